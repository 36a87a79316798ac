# allinone.py ETC_DIR -- runs the account, container, object and proxy servers
# of ETC_DIR/*-server.conf in ONE Python process: the same WSGI applications
# and HTTP protocol class that swift-*-server run, each on its own listening
# socket, served by eventlet green threads. It starts about four times faster
# than four separate servers (one interpreter, one set of imports), which is
# what tests want; the price is that all requests share one CPU.
# Exits on SIGTERM/SIGINT.
import os
import signal
import sys
import time

from swift.common import utils, wsgi

utils.eventlet_monkey_patch()
import eventlet  # noqa: E402  (after monkey patching, as swift does)
import eventlet.wsgi  # noqa: E402

os.environ["TZ"] = "UTC+0"
time.tzset()
eventlet.hubs.use_hub(utils.get_hub())

etc = sys.argv[1]
servers = []
for name in ("account", "container", "object", "proxy"):
    path = "%s/%s-server.conf" % (etc, name)
    conf, logger, log_name = wsgi._initrp(path, "%s-server" % name, verbose=True)
    sock = wsgi.get_socket(conf)
    app = wsgi.loadapp(path, global_conf={"log_name": log_name})
    servers.append((conf, sock, app))

pool_threads = []
for conf, sock, app in servers:
    pool = wsgi.RestrictedGreenPool(size=int(conf.get("max_clients", "1024")))
    pool_threads.append(eventlet.spawn(
        eventlet.wsgi.server, sock, app, wsgi.NullLogger(),
        custom_pool=pool, protocol=wsgi.SwiftHttpProtocol,
        socket_timeout=float(conf.get("client_timeout") or 60),
        capitalize_response_headers=False))


def stop(signum, frame):
    os._exit(0)


signal.signal(signal.SIGTERM, stop)
signal.signal(signal.SIGINT, stop)
for t in pool_threads:
    t.wait()
