# mkrings.py ETC_DIR ACCOUNT_PORT CONTAINER_PORT OBJECT_PORT
# Writes account|container|object.ring.gz into ETC_DIR: one device "d1" on
# 127.0.0.1, one replica, part power 8. One interpreter for all three rings
# is much faster than nine swift-ring-builder runs.
import sys

from swift.common.ring import RingBuilder

etc = sys.argv[1]
for name, port in zip(("account", "container", "object"), sys.argv[2:5]):
    b = RingBuilder(8, 1, 1)
    b.add_dev({"region": 1, "zone": 1, "ip": "127.0.0.1", "port": int(port),
               "replication_ip": "127.0.0.1", "replication_port": int(port),
               "device": "d1", "weight": 1, "meta": ""})
    b.rebalance()
    b.get_ring().save("%s/%s.ring.gz" % (etc, name))
