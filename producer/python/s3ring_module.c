/* s3ring_module.c -- the Python module s3ring: Ring(name, create).put(key, body).
 *
 * put() returns the C API's result as an int: OK (0) or a negative errno,
 * the common ones named by module constants (FULL, TIMED_OUT, ...). Only
 * misuse raises: a key that is not a str, a body without the buffer
 * protocol or not contiguous, a closed Ring, a ring that cannot be opened
 * (an OSError naming the ring). The body is copied once, straight into the
 * ring. The GIL is kept for a put that does not wait (timeout_ms 0, the
 * default), and released for one that may (the whole put, not a try
 * first: a try that finds the ring full counts a drop in the slot's
 * dropped_full, and the wait that follows may well succeed).
 *
 * What a put costs here, beyond s3ring_put(), is kept to a few loads: the
 * arguments come by vectorcall, positional ones without the keyword
 * search; a bytes body (immutable, and kept alive by the caller for the
 * call) is read in place, without the buffer protocol; an ASCII key is its
 * own UTF-8; and every result is a preallocated int, so no put allocates.
 * Other bodies go through the buffer protocol, which also pins a
 * bytearray's storage while the GIL is released.
 *
 * Closing while other threads wait in put(): each put holds a use count
 * (changed only under the GIL), close() marks the Ring closed, and the
 * native handle is released by whoever drops the last use.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <limits.h>
#include <string.h>

#include "s3ring.h"

struct ring_object {
	PyObject_HEAD
	struct s3ring_producer *p;
	PyObject *name;
	long uses;
	int closed;
};

static void
ring_drop(struct ring_object *self)
{
	if (--self->uses == 0 && self->closed && self->p != NULL) {
		s3ring_close(self->p);
		self->p = NULL;
	}
}

static int
ring_init(PyObject *obj, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = { "name", "create", NULL };
	struct ring_object *self = (struct ring_object *)obj;
	const char *name = NULL, *shown;
	int create = 0, err;
	struct s3ring_producer *p;

	if (!PyArg_ParseTupleAndKeywords(args, kw, "|zp:Ring", kwlist, &name, &create))
		return -1;
	if (self->p != NULL || self->uses != 0) {
		PyErr_SetString(PyExc_RuntimeError, "s3ring.Ring is already open");
		return -1;
	}
	shown = name;
	if (shown == NULL && ((shown = getenv("S3RING_RING")) == NULL || *shown == '\0'))
		shown = "default";
	p = s3ring_open(name, create ? S3RING_CREATE : 0);
	if (p == NULL) {
		err = errno;
		if (err == ENOENT)
			PyErr_Format(PyExc_FileNotFoundError, "s3ring: no such ring '%s' "
			    "(/dev/shm/s3ring.%s): start s3ring-uploader --ring %s, which creates it, "
			    "or use Ring(name, create=True)", shown, shown, shown);
		else
			PyErr_Format(PyExc_OSError, "s3ring: cannot open ring '%s': %s",
			    shown, s3ring_strerror(err));
		return -1;
	}
	self->p = p;
	self->closed = 0;
	Py_XSETREF(self->name, PyUnicode_FromString(shown));
	return self->name == NULL ? -1 : 0;
}

static void
ring_dealloc(PyObject *obj)
{
	struct ring_object *self = (struct ring_object *)obj;

	/* No put can be running: each holds a reference to self. */
	s3ring_close(self->p);
	Py_XDECREF(self->name);
	Py_TYPE(obj)->tp_free(obj);
}

static int
ring_usable(struct ring_object *self)
{
	if (self->p == NULL || self->closed) {
		PyErr_SetString(PyExc_ValueError, "s3ring: put on a closed Ring");
		return 0;
	}
	return 1;
}

/* The results put() can return, 0 down to -RESULT_MAX, made once at import:
 * CPython caches only the ints from -5 to 256, and a FULL or TIMED_OUT
 * result must not allocate either (a full ring is when allocating hurts).
 * A result outside the table (there is none in Linux's errno range today)
 * falls back to a new int. Never freed: the module cannot be unloaded. */
#define RESULT_MAX 133 /* EHWPOISON, the largest Linux errno */
static PyObject *result_ints[RESULT_MAX + 1];

static PyObject *
result(int rc)
{
	if (rc <= 0 && rc >= -RESULT_MAX)
		return Py_NewRef(result_ints[-rc]);
	return PyLong_FromLong(rc);
}

/* The key as UTF-8, or NULL with *rc = -EINVAL when it cannot be one (a
 * lone surrogate, an embedded NUL): a bad key is a result, not an error.
 * NULL with *rc == 0 is an error raised (out of memory). A compact ASCII
 * str, the usual key, is its own UTF-8 and is NUL-terminated in place. */
static const char *
key_utf8(PyObject *key, int *rc)
{
	Py_ssize_t n;
	const char *k;

	if (PyUnicode_IS_COMPACT_ASCII(key)) {
		k = (const char *)PyUnicode_DATA(key);
		n = PyUnicode_GET_LENGTH(key);
	} else if ((k = PyUnicode_AsUTF8AndSize(key, &n)) == NULL) {
		if (!PyErr_ExceptionMatches(PyExc_UnicodeEncodeError))
			return NULL;
		PyErr_Clear();
		*rc = -EINVAL;
		return NULL;
	}
	/* s3ring_put() takes a C string: a key cut short at a NUL would be
	 * another, valid, key. */
	if (memchr(k, '\0', (size_t)n) != NULL) {
		*rc = -EINVAL;
		return NULL;
	}
	return k;
}

/* Fills *key, *body and *timeout (NULL when absent) from put()'s vectorcall
 * arguments: put(key, body, timeout_ms=0), any of them by keyword. A put is
 * called millions of times, so this does by hand what
 * PyArg_ParseTupleAndKeywords would do at several times the cost, and
 * positional arguments alone skip the keyword search. */
static int
put_args(PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames,
    PyObject **key, PyObject **body, PyObject **timeout)
{
	static const char *const names[] = { "key", "body", "timeout_ms" };
	PyObject **slot[] = { key, body, timeout };
	Py_ssize_t nkw = kwnames != NULL ? PyTuple_GET_SIZE(kwnames) : 0;

	*key = *body = *timeout = NULL;
	if (nkw == 0 && (nargs == 2 || nargs == 3)) {
		*key = args[0];
		*body = args[1];
		if (nargs == 3)
			*timeout = args[2];
		goto out_check_key;
	}
	if (nargs > 3)
		goto out_usage;
	for (Py_ssize_t i = 0; i < nargs; i++)
		*slot[i] = args[i];
	for (Py_ssize_t i = 0; i < nkw; i++) {
		PyObject *name = PyTuple_GET_ITEM(kwnames, i);
		size_t j;

		for (j = 0; j < 3; j++)
			if (PyUnicode_CompareWithASCIIString(name, names[j]) == 0)
				break;
		if (j == 3 || *slot[j] != NULL)
			goto out_usage;
		*slot[j] = args[nargs + i];
	}
	if (*key == NULL || *body == NULL)
		goto out_usage;
out_check_key:
	if (!PyUnicode_Check(*key)) {
		PyErr_Format(PyExc_TypeError, "put(): key must be str, not %.100s",
		    Py_TYPE(*key)->tp_name);
		return -1;
	}
	return 0;

out_usage:
	PyErr_SetString(PyExc_TypeError, "usage: put(key, body, timeout_ms=0)");
	return -1;
}

/* The put itself, on a body that stays put while the GIL is released (an
 * immutable bytes, or an exported buffer). */
static int
put_body(struct ring_object *self, const char *key, const void *body,
    size_t len, int timeout_ms)
{
	struct s3ring_producer *p = self->p;
	int rc;

	if (timeout_ms == 0)
		return s3ring_put(p, key, body, len, 0);
	self->uses++;
	Py_BEGIN_ALLOW_THREADS
	rc = s3ring_put(p, key, body, len, timeout_ms);
	Py_END_ALLOW_THREADS
	ring_drop(self);
	return rc;
}

static PyObject *
ring_put(PyObject *obj, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
	struct ring_object *self = (struct ring_object *)obj;
	PyObject *key, *body, *timeout;
	Py_buffer view;
	int timeout_ms = 0, rc = 0;
	const char *k;

	if (put_args(args, nargs, kwnames, &key, &body, &timeout) < 0)
		return NULL;
	if (timeout != NULL) {
		long t = PyLong_AsLong(timeout);

		if (t == -1 && PyErr_Occurred())
			return NULL;
		timeout_ms = t > INT_MAX ? INT_MAX : t < -1 ? -1 : (int)t;
	}
	if (!ring_usable(self))
		return NULL;
	if (PyBytes_CheckExact(body)) {
		if ((k = key_utf8(key, &rc)) == NULL)
			return rc == 0 ? NULL : result(rc);
		return result(put_body(self, k, PyBytes_AS_STRING(body),
		    (size_t)PyBytes_GET_SIZE(body), timeout_ms));
	}
	if (PyObject_GetBuffer(body, &view, PyBUF_SIMPLE) < 0)
		return NULL;
	if ((k = key_utf8(key, &rc)) == NULL) {
		if (rc == 0)
			goto out_release;
		goto out_result;
	}
	rc = put_body(self, k, view.buf, (size_t)view.len, timeout_ms);
out_result:
	PyBuffer_Release(&view);
	return result(rc);
out_release:
	PyBuffer_Release(&view);
	return NULL;
}

static PyObject *
ring_max_body(PyObject *obj, PyObject *arg)
{
	struct ring_object *self = (struct ring_object *)obj;
	Py_ssize_t n = PyLong_AsSsize_t(arg);

	if (n == -1 && PyErr_Occurred())
		return NULL;
	if (n < 0) {
		PyErr_SetString(PyExc_ValueError, "key_len must be >= 0");
		return NULL;
	}
	if (!ring_usable(self))
		return NULL;
	return PyLong_FromSize_t(s3ring_max_body(self->p, (size_t)n));
}

static PyObject *
ring_close(PyObject *obj, PyObject *unused)
{
	struct ring_object *self = (struct ring_object *)obj;

	if (!self->closed) {
		self->closed = 1;
		self->uses++;
		ring_drop(self);
	}
	Py_RETURN_NONE;
}

static PyObject *
ring_enter(PyObject *obj, PyObject *unused)
{
	if (!ring_usable((struct ring_object *)obj))
		return NULL;
	return Py_NewRef(obj);
}

static PyObject *
ring_exit(PyObject *obj, PyObject *args)
{
	return ring_close(obj, NULL);
}

static PyObject *
ring_get_name(PyObject *obj, void *closure)
{
	struct ring_object *self = (struct ring_object *)obj;

	return Py_NewRef(self->name != NULL ? self->name : Py_None);
}

static PyObject *
ring_get_closed(PyObject *obj, void *closure)
{
	struct ring_object *self = (struct ring_object *)obj;

	return PyBool_FromLong(self->p == NULL || self->closed);
}

static PyObject *
mod_strerror(PyObject *mod, PyObject *arg)
{
	long rc = PyLong_AsLong(arg);

	if (rc == -1 && PyErr_Occurred())
		return NULL;
	return PyUnicode_FromString(s3ring_strerror((int)rc));
}

static PyMethodDef ring_methods[] = {
	{ "put", (PyCFunction)(void (*)(void))ring_put, METH_FASTCALL | METH_KEYWORDS,
	  "put(key, body, timeout_ms=0) -> int\n\n"
	  "Puts body (any contiguous buffer) under key (str). timeout_ms: 0 returns FULL\n"
	  "at once when the ring is full, > 0 waits up to that long, < 0 forever.\n"
	  "Returns OK (0) or a negative result: FULL, TIMED_OUT, TOO_LARGE, INVALID_KEY,\n"
	  "INCOMPATIBLE, CORRUPT, RETIRED, or another negative errno." },
	{ "max_body", ring_max_body, METH_O,
	  "max_body(key_len) -> int: the largest body for a key of key_len UTF-8 bytes." },
	{ "close", ring_close, METH_NOARGS,
	  "Releases the producer slot (once puts waiting in other threads return)." },
	{ "__enter__", ring_enter, METH_NOARGS, NULL },
	{ "__exit__", ring_exit, METH_VARARGS, NULL },
	{ NULL, NULL, 0, NULL },
};

static PyGetSetDef ring_getset[] = {
	{ "name", ring_get_name, NULL, "the ring's name", NULL },
	{ "closed", ring_get_closed, NULL, "True once closed", NULL },
	{ NULL, NULL, NULL, NULL, NULL },
};

static PyTypeObject ring_type = {
	PyVarObject_HEAD_INIT(NULL, 0)
	.tp_name = "s3ring.Ring",
	.tp_basicsize = sizeof(struct ring_object),
	.tp_flags = Py_TPFLAGS_DEFAULT,
	.tp_doc = "Ring(name=None, create=False): a producer handle on /dev/shm/s3ring.NAME.\n\n"
	    "name None means $S3RING_RING, or \"default\". A missing ring raises\n"
	    "FileNotFoundError unless create is true. Usable from many threads; after\n"
	    "fork(), open a new Ring in the child.",
	.tp_new = PyType_GenericNew,
	.tp_init = ring_init,
	.tp_dealloc = ring_dealloc,
	.tp_methods = ring_methods,
	.tp_getset = ring_getset,
};

static PyMethodDef mod_methods[] = {
	{ "strerror", mod_strerror, METH_O, "strerror(rc) -> str: a message for a result." },
	{ NULL, NULL, 0, NULL },
};

static struct PyModuleDef mod_def = {
	PyModuleDef_HEAD_INIT,
	.m_name = "s3ring",
	.m_doc = "Put messages for S3 into an s3ring shared-memory ring.",
	.m_size = -1,
	.m_methods = mod_methods,
};

PyMODINIT_FUNC PyInit_s3ring(void);

PyMODINIT_FUNC
PyInit_s3ring(void)
{
	static const struct { const char *name; int value; } results[] = {
		{ "OK", 0 }, { "FULL", -EAGAIN }, { "TIMED_OUT", -ETIMEDOUT },
		{ "TOO_LARGE", -EMSGSIZE }, { "INVALID_KEY", -EINVAL },
		{ "INCOMPATIBLE", -EPROTO }, { "CORRUPT", -EBADMSG }, { "RETIRED", -ESTALE },
		{ "MAX_KEY", S3RING_MAX_KEY },
	};
	PyObject *m;

	for (int i = 0; i <= RESULT_MAX; i++)
		if (result_ints[i] == NULL && (result_ints[i] = PyLong_FromLong(-i)) == NULL)
			return NULL;
	if (PyType_Ready(&ring_type) < 0)
		return NULL;
	if ((m = PyModule_Create(&mod_def)) == NULL)
		return NULL;
	if (PyModule_AddObjectRef(m, "Ring", (PyObject *)&ring_type) < 0)
		goto out_decref;
	for (size_t i = 0; i < sizeof(results) / sizeof(results[0]); i++)
		if (PyModule_AddIntConstant(m, results[i].name, results[i].value) < 0)
			goto out_decref;
	return m;

out_decref:
	Py_DECREF(m);
	return NULL;
}
