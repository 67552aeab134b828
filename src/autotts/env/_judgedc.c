/*
 * autotts.env._judgedc -- the candidate process's per-action path of a judged session, in C.
 *
 * Why: in a judged discovery sweep a controller such as CMC takes ~500 actions per episode
 * and its own logic costs well under a microsecond per action.  In pure Python the
 * candidate-side plumbing of each action -- the session mirroring what was revealed, the
 * relay noting the request and switching to the next episode, turning the judge's reply
 * into Reveal tuples -- cost about three times the controller itself.  This module does
 * exactly the same work as the pure-Python code it stands in for:
 *
 *   SessionCore.advance   the hot path of autotts.env.judged.JudgedSession.advance
 *                         (every other case -- a bool, an int subclass, an illegal branch, a
 *                         refusal -- is handed to the Python method ``_advance_py``);
 *   Relay                 autotts.discovery._child._PyRelay (link + step);
 *   make_reveals          autotts.env.wire._py_make_reveals (a step reply's columns to Reveals).
 *
 * Nothing here touches hidden data: it runs inside the untrusted candidate process, which
 * never holds any.  It still never trusts the objects it is handed (a candidate may replace
 * its session's lists): every list is type- and bounds-checked, and nothing borrowed is used
 * after a greenlet switch.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <stdint.h>
#include <string.h>

#if PY_BIG_ENDIAN
#error "autotts.env._judgedc writes little-endian frames; big-endian builds use the pure-Python path"
#endif

static PyObject *RevealType;   /* autotts.env.session.Reveal */
static PyObject *str_switch;
static PyObject *str_advance_py;
static PyObject *str_refused;
static PyObject *str_send;
static PyObject *STEP_DONE;    /* an episode's link: the step is over */
static PyObject *START_NEXT;   /* an episode's link: start the next (unstarted) episode */
static PyObject *ONE;
static PyTypeObject *GreenletType; /* greenlet.greenlet */
static PyObject *greenlet_switch;  /* its unbound switch method: no attribute lookup per switch */

/* Bumped whenever this module's interface changes: Python ignores a stale build (see judged.py). */
#define JUDGEDC_ABI 2

#define OP_ADVANCE 'a'
#define OP_FAIL 'E'

/* ------------------------------------------------------------------ growable buffers */
typedef struct {
    char *p;
    Py_ssize_t n;
    Py_ssize_t cap;
} Buf;

static int
buf_put(Buf *b, const void *src, Py_ssize_t len)
{
    if (b->n + len > b->cap) {
        Py_ssize_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + len)
            cap *= 2;
        char *p = PyMem_Realloc(b->p, (size_t)cap);
        if (p == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, src, (size_t)len);
    b->n += len;
    return 0;
}

static void
buf_free(Buf *b)
{
    PyMem_Free(b->p);
    b->p = NULL;
    b->n = b->cap = 0;
}

/* ------------------------------------------------------------------ helpers */
static PyObject *
do_switch(PyObject *g, PyObject *value)
{
    PyObject *args[2] = {g, value};
    if (Py_TYPE(g) == GreenletType)
        return PyObject_Vectorcall(greenlet_switch, args, 2, NULL);
    return PyObject_VectorcallMethod(str_switch, args, 2, NULL);
}

/* An int in [lo, hi] from a Python int; -1 with an exception set otherwise. */
static int
int_in(PyObject *o, long lo, long hi, long *out, const char *what)
{
    if (!PyLong_Check(o)) {
        PyErr_Format(PyExc_TypeError, "%s must be an int", what);
        return -1;
    }
    long v = PyLong_AsLong(o);
    if (v == -1 && PyErr_Occurred())
        return -1;
    if (v < lo || v > hi) {
        PyErr_Format(PyExc_ValueError, "%s out of range: %ld", what, v);
        return -1;
    }
    *out = v;
    return 0;
}

/* ================================================================== Relay */
typedef struct {
    PyObject_HEAD
    PyObject *main;      /* the dispatcher greenlet */
    PyObject *lets;      /* list: the episodes' greenlets, by slot */
    PyObject *slots;     /* this step's slots (list of int) */
    PyObject *replies;   /* this step's replies (list) */
    Py_ssize_t pos;
    Py_ssize_t n;
    long cur;
    Buf sent;            /* u16 slot per request of the frame */
    Buf ops;             /* u8 op */
    Buf args;            /* i32 arg */
    Buf payload;
    Buf ask;             /* u16 slot per episode waiting for a reply */
} Relay;

static PyTypeObject RelayType;

static int
relay_note(Relay *self, long slot, long op, long arg, PyObject *data, int asks)
{
    uint16_t s = (uint16_t)slot;
    uint8_t o = (uint8_t)op;
    int32_t a = (int32_t)arg;
    if (buf_put(&self->sent, &s, 2) < 0 || buf_put(&self->ops, &o, 1) < 0 || buf_put(&self->args, &a, 4) < 0)
        return -1;
    if (data != NULL && PyBytes_GET_SIZE(data) > 0 &&
        buf_put(&self->payload, PyBytes_AS_STRING(data), PyBytes_GET_SIZE(data)) < 0)
        return -1;
    if (asks && buf_put(&self->ask, &s, 2) < 0)
        return -1;
    return 0;
}

/* (op, arg, data) of a request or of an episode's final message. */
static int
parse_message(PyObject *msg, long *op, long *arg, PyObject **data)
{
    if (!PyTuple_Check(msg) || PyTuple_GET_SIZE(msg) != 3) {
        PyErr_SetString(PyExc_TypeError, "a request is an int or an (op, arg, payload) tuple");
        return -1;
    }
    if (int_in(PyTuple_GET_ITEM(msg, 0), 0, 255, op, "request op") < 0 ||
        int_in(PyTuple_GET_ITEM(msg, 1), INT32_MIN, INT32_MAX, arg, "request argument") < 0)
        return -1;
    *data = PyTuple_GET_ITEM(msg, 2);
    if (!PyBytes_Check(*data)) {
        PyErr_SetString(PyExc_TypeError, "a request payload must be bytes");
        return -1;
    }
    return 0;
}

/* Resume the next episode of the step with its reply; the dispatcher when the step is over. */
static PyObject *
relay_next(Relay *self)
{
    /* The lists are checked afresh each time: code of the candidate can reach the relay. */
    if (self->slots == NULL || self->replies == NULL || self->pos >= self->n ||
        self->pos >= PyList_GET_SIZE(self->slots) || self->pos >= PyList_GET_SIZE(self->replies))
        return do_switch(self->main, STEP_DONE);
    long slot;
    if (int_in(PyList_GET_ITEM(self->slots, self->pos), 0, 65535, &slot, "slot") < 0)
        return NULL;
    PyObject *reply = PyList_GET_ITEM(self->replies, self->pos);
    self->pos++;
    self->cur = slot;
    if (!PyList_Check(self->lets) || slot >= PyList_GET_SIZE(self->lets)) {
        PyErr_SetString(PyExc_IndexError, "no episode in that slot");
        return NULL;
    }
    PyObject *g = PyList_GET_ITEM(self->lets, slot);
    Py_INCREF(g);
    Py_INCREF(reply);
    PyObject *out;
    int started = PyObject_IsTrue(g); /* started and not finished */
    if (started < 0)
        out = NULL;
    else if (started)
        out = do_switch(g, reply);
    else
        out = do_switch(self->main, START_NEXT);
    Py_DECREF(reply);
    Py_DECREF(g);
    return out;
}

/* The session's link: note the request, run the next episode; this one's reply comes back later. */
static PyObject *
relay_link(Relay *self, PyObject *request)
{
    long op, arg;
    PyObject *data = NULL;
    if (PyLong_CheckExact(request)) {
        if (int_in(request, INT32_MIN, INT32_MAX, &arg, "branch") < 0)
            return NULL;
        op = OP_ADVANCE;
    }
    else if (parse_message(request, &op, &arg, &data) < 0)
        return NULL;
    if (relay_note(self, self->cur, op, arg, data, 1) < 0)
        return NULL;
    return relay_next(self);
}

static PyObject *
relay_link_advance(Relay *self, long branch)
{
    if (relay_note(self, self->cur, OP_ADVANCE, branch, NULL, 1) < 0)
        return NULL;
    return relay_next(self);
}

static PyObject *
relay_call(Relay *self, PyObject *args, PyObject *kwargs)
{
    PyObject *request;
    if (kwargs != NULL && PyDict_GET_SIZE(kwargs)) {
        PyErr_SetString(PyExc_TypeError, "a link takes one request");
        return NULL;
    }
    if (!PyArg_UnpackTuple(args, "link", 1, 1, &request))
        return NULL;
    return relay_link(self, request);
}

static PyObject *
relay_frame(Relay *self)
{
    Py_ssize_t n = self->ops.n;
    /* The columns grow together; after a failed allocation the frame is cut to the shortest. */
    if (self->sent.n / 2 < n)
        n = self->sent.n / 2;
    if (self->args.n / 4 < n)
        n = self->args.n / 4;
    Py_ssize_t size = 1 + 4 + 2 * n + n + 4 * n + self->payload.n;
    PyObject *frame = PyBytes_FromStringAndSize(NULL, size);
    if (frame == NULL)
        return NULL;
    char *p = PyBytes_AS_STRING(frame);
    uint32_t count = (uint32_t)n;
    *p++ = 'M';
    memcpy(p, &count, 4);
    p += 4;
    memcpy(p, self->sent.p, (size_t)(2 * n));
    p += 2 * n;
    memcpy(p, self->ops.p, (size_t)n);
    p += n;
    memcpy(p, self->args.p, (size_t)(4 * n));
    p += 4 * n;
    if (self->payload.n)
        memcpy(p, self->payload.p, (size_t)self->payload.n);
    return frame;
}

static int
relay_send(PyObject *chan, PyObject *frame)
{
    if (frame == NULL)
        return -1;
    PyObject *r = PyObject_CallMethodOneArg(chan, str_send, frame);
    Py_DECREF(frame);
    if (r == NULL)
        return -1;
    Py_DECREF(r);
    return 0;
}

/* step(chan, slots, replies): run one step of ``slots``; send its frame. The waiting slots, or None after a failure. */
static PyObject *
relay_step(Relay *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "step(chan, slots, replies)");
        return NULL;
    }
    PyObject *chan = args[0], *slots = args[1], *replies = args[2];
    if (!PyList_CheckExact(slots) || !PyList_CheckExact(replies) ||
        PyList_GET_SIZE(slots) != PyList_GET_SIZE(replies)) {
        PyErr_SetString(PyExc_ValueError, "step: slots and replies must be lists of the same length");
        return NULL;
    }
    Py_INCREF(slots);
    Py_XSETREF(self->slots, slots);
    Py_INCREF(replies);
    Py_XSETREF(self->replies, replies);
    self->n = PyList_GET_SIZE(slots);
    self->pos = 0;
    self->sent.n = self->ops.n = self->args.n = self->payload.n = self->ask.n = 0;
    while (self->pos < self->n && self->pos < PyList_GET_SIZE(slots) && self->pos < PyList_GET_SIZE(replies)) {
        long slot;
        if (int_in(PyList_GET_ITEM(slots, self->pos), 0, 65535, &slot, "slot") < 0)
            return NULL;
        PyObject *reply = PyList_GET_ITEM(replies, self->pos);
        self->pos++;
        self->cur = slot;
        if (!PyList_Check(self->lets) || slot >= PyList_GET_SIZE(self->lets)) {
            PyErr_SetString(PyExc_IndexError, "no episode in that slot");
            return NULL;
        }
        PyObject *g = PyList_GET_ITEM(self->lets, slot);
        Py_INCREF(g);
        Py_INCREF(reply);
        PyObject *msg = do_switch(g, reply);
        Py_DECREF(reply);
        Py_DECREF(g);
        while (msg == START_NEXT) {
            Py_DECREF(msg);
            if (!PyList_Check(self->lets) || self->cur >= PyList_GET_SIZE(self->lets)) {
                PyErr_SetString(PyExc_IndexError, "no episode in that slot");
                return NULL;
            }
            g = PyList_GET_ITEM(self->lets, self->cur);
            Py_INCREF(g);
            msg = do_switch(g, Py_None);
            Py_DECREF(g);
        }
        if (msg == NULL)
            return NULL;
        if (msg == STEP_DONE) {
            Py_DECREF(msg);
            break;
        }
        /* An episode ended (the one switched into last): its answer, or the job's end. */
        long op, arg;
        PyObject *data;
        if (parse_message(msg, &op, &arg, &data) < 0) {
            Py_DECREF(msg);
            return NULL;
        }
        if (op == OP_FAIL) {
            self->sent.n = self->ops.n = self->args.n = self->payload.n = 0;
            int bad = relay_note(self, self->cur, op, arg, data, 0);
            Py_DECREF(msg);
            if (bad < 0 || relay_send(chan, relay_frame(self)) < 0)
                return NULL;
            Py_RETURN_NONE;
        }
        int bad = relay_note(self, self->cur, op, arg, data, 0);
        Py_DECREF(msg);
        if (bad < 0)
            return NULL;
    }
    if (relay_send(chan, relay_frame(self)) < 0)
        return NULL;
    Py_ssize_t k = self->ask.n / 2;
    PyObject *ask = PyList_New(k);
    if (ask == NULL)
        return NULL;
    const uint16_t *a = (const uint16_t *)self->ask.p;
    for (Py_ssize_t i = 0; i < k; i++) {
        PyObject *v = PyLong_FromLong(a[i]);
        if (v == NULL) {
            Py_DECREF(ask);
            return NULL;
        }
        PyList_SET_ITEM(ask, i, v);
    }
    return ask;
}

static int
relay_init(Relay *self, PyObject *args, PyObject *kwargs)
{
    PyObject *main, *lets;
    static char *kwlist[] = {"main", "lets", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OO!:Relay", kwlist, &main, &PyList_Type, &lets))
        return -1;
    Py_INCREF(main);
    Py_XSETREF(self->main, main);
    Py_INCREF(lets);
    Py_XSETREF(self->lets, lets);
    return 0;
}

static int
relay_traverse(Relay *self, visitproc visit, void *arg)
{
    Py_VISIT(self->main);
    Py_VISIT(self->lets);
    Py_VISIT(self->slots);
    Py_VISIT(self->replies);
    return 0;
}

static int
relay_clear(Relay *self)
{
    Py_CLEAR(self->main);
    Py_CLEAR(self->lets);
    Py_CLEAR(self->slots);
    Py_CLEAR(self->replies);
    return 0;
}

static void
relay_dealloc(Relay *self)
{
    PyObject_GC_UnTrack(self);
    relay_clear(self);
    buf_free(&self->sent);
    buf_free(&self->ops);
    buf_free(&self->args);
    buf_free(&self->payload);
    buf_free(&self->ask);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *
relay_get_cur(Relay *self, void *closure)
{
    return PyLong_FromLong(self->cur);
}

static PyMethodDef relay_methods[] = {
    {"step", (PyCFunction)(void (*)(void))relay_step, METH_FASTCALL,
     "step(chan, slots, replies): run one step of the slots, send its frame; the waiting slots or None."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef relay_getset[] = {
    {"cur", (getter)relay_get_cur, NULL, "the slot of the episode running now", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject RelayType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "autotts.env._judgedc.Relay",
    .tp_basicsize = sizeof(Relay),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "Relay(main, lets): one step frame at a time; calling it is an episode's link.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)relay_init,
    .tp_dealloc = (destructor)relay_dealloc,
    .tp_traverse = (traverseproc)relay_traverse,
    .tp_clear = (inquiry)relay_clear,
    .tp_call = (ternaryfunc)relay_call,
    .tp_methods = relay_methods,
    .tp_getset = relay_getset,
};

/* ================================================================== SessionCore */
typedef struct {
    PyObject_HEAD
    PyObject *link;
    Py_ssize_t n_total;
    Py_ssize_t delta;
    Py_ssize_t n_open;
    Py_ssize_t n_events;
    PyObject *depth;
    PyObject *state;
    PyObject *answers;
    PyObject *tokens;
    PyObject *events;
    PyObject *notes;
    long long cost;
} Core;

static PyObject *
list_add(PyObject *list, Py_ssize_t i, PyObject *amount)
{
    PyObject *sum = PyNumber_Add(PyList_GET_ITEM(list, i), amount);
    if (sum == NULL)
        return NULL;
    PyList_SetItem(list, i, sum); /* steals sum, releases the old item */
    return sum;
}

/* advance(branch): the hot path; every other case goes to the Python method _advance_py. */
static PyObject *
core_advance(Core *self, PyObject *branch)
{
    PyObject *state = self->state;
    if (!PyLong_CheckExact(branch) || state == NULL || !PyList_CheckExact(state))
        goto slow;
    Py_ssize_t v = PyLong_AsSsize_t(branch);
    if (v == -1 && PyErr_Occurred()) {
        PyErr_Clear();
        goto slow;
    }
    if (v < 0 || v >= self->n_open || v >= PyList_GET_SIZE(state))
        goto slow;
    PyObject *st = PyList_GET_ITEM(state, v);
    if (!PyLong_CheckExact(st))
        goto slow;
    long sv = PyLong_AsLong(st);
    if (sv == -1 && PyErr_Occurred()) {
        PyErr_Clear();
        goto slow;
    }
    if (sv != 0)
        goto slow;

    PyObject *reply;
    PyObject *link = self->link;
    if (link == NULL) {
        PyErr_SetString(PyExc_AttributeError, "the session has no link");
        return NULL;
    }
    Py_INCREF(link);
    if (Py_TYPE(link) == &RelayType)
        reply = relay_link_advance((Relay *)link, (long)v);
    else
        reply = PyObject_CallOneArg(link, branch);
    Py_DECREF(link);
    if (reply == NULL)
        return NULL;
    if ((PyObject *)Py_TYPE(reply) != RevealType || PyTuple_GET_SIZE(reply) != 4) {
        PyObject *r = PyObject_CallMethodObjArgs((PyObject *)self, str_refused, reply, branch, NULL);
        Py_DECREF(reply);
        Py_XDECREF(r);
        if (r != NULL)
            PyErr_SetString(PyExc_RuntimeError, "_refused() returned instead of raising");
        return NULL;
    }
    /* Inlined _apply(ADVANCE, reply). The lists are read afresh: the episode was suspended. */
    PyObject *bo = PyTuple_GET_ITEM(reply, 0), *answer = PyTuple_GET_ITEM(reply, 1);
    PyObject *finished = PyTuple_GET_ITEM(reply, 2), *charge = PyTuple_GET_ITEM(reply, 3);
    Py_ssize_t b = PyLong_Check(bo) ? PyLong_AsSsize_t(bo) : -1;
    if (b == -1 && PyErr_Occurred())
        goto fail;
    PyObject *depth = self->depth, *answers = self->answers, *tokens = self->tokens, *events = self->events;
    state = self->state;
    if (depth == NULL || answers == NULL || tokens == NULL || events == NULL || state == NULL ||
        !PyList_CheckExact(depth) || !PyList_CheckExact(answers) || !PyList_CheckExact(tokens) ||
        !PyList_CheckExact(events) || !PyList_CheckExact(state) || b < 0 || b >= PyList_GET_SIZE(depth) ||
        b >= PyList_GET_SIZE(answers) || b >= PyList_GET_SIZE(tokens) || b >= PyList_GET_SIZE(state)) {
        PyErr_SetString(PyExc_IndexError, "the session's state does not match the judge's reveal");
        goto fail;
    }
    long long c = PyLong_AsLongLong(charge);
    if (c == -1 && PyErr_Occurred())
        goto fail;
    int fin = PyObject_IsTrue(finished);
    if (fin < 0)
        goto fail;
    if (fin) {
        Py_INCREF(ONE);
        PyList_SetItem(state, b, ONE);
    }
    else if (list_add(depth, b, ONE) == NULL)
        goto fail;
    Py_INCREF(answer);
    PyList_SetItem(answers, b, answer);
    if (list_add(tokens, b, charge) == NULL)
        goto fail;
    self->cost += c;
    /* The event, flat, from the reveal's own objects (see JudgedSession.__init__). */
    if (!fin && c == (long long)self->delta) {
        if (PyList_Append(events, bo) < 0 || PyList_Append(events, answer) < 0)
            goto fail;
    }
    else {
        PyObject *code = PyLong_FromSsize_t(-1 - b);
        int bad = code == NULL || PyList_Append(events, code) < 0 || PyList_Append(events, answer) < 0 ||
                  PyList_Append(events, finished) < 0 || PyList_Append(events, charge) < 0;
        Py_XDECREF(code);
        if (bad)
            goto fail;
    }
    self->n_events++;
    return reply;
fail:
    Py_DECREF(reply);
    return NULL;
slow:
    return PyObject_CallMethodOneArg((PyObject *)self, str_advance_py, branch);
}

static int
core_traverse(Core *self, visitproc visit, void *arg)
{
    Py_VISIT(self->link);
    Py_VISIT(self->depth);
    Py_VISIT(self->state);
    Py_VISIT(self->answers);
    Py_VISIT(self->tokens);
    Py_VISIT(self->events);
    Py_VISIT(self->notes);
    return 0;
}

static int
core_clear(Core *self)
{
    Py_CLEAR(self->link);
    Py_CLEAR(self->depth);
    Py_CLEAR(self->state);
    Py_CLEAR(self->answers);
    Py_CLEAR(self->tokens);
    Py_CLEAR(self->events);
    Py_CLEAR(self->notes);
    return 0;
}

static void
core_dealloc(Core *self)
{
    PyObject_GC_UnTrack(self);
    core_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyMethodDef core_methods[] = {
    {"advance", (PyCFunction)core_advance, METH_O,
     "Advance an opened, live branch by one interval and reveal its latest answer."},
    {NULL, NULL, 0, NULL},
};

static PyMemberDef core_members[] = {
    {"_link", T_OBJECT_EX, offsetof(Core, link), 0, NULL},
    {"_n_total", T_PYSSIZET, offsetof(Core, n_total), 0, NULL},
    {"_delta", T_PYSSIZET, offsetof(Core, delta), 0, NULL},
    {"_n_open", T_PYSSIZET, offsetof(Core, n_open), 0, NULL},
    {"_n_events", T_PYSSIZET, offsetof(Core, n_events), 0, NULL},
    {"_depth", T_OBJECT_EX, offsetof(Core, depth), 0, NULL},
    {"_state", T_OBJECT_EX, offsetof(Core, state), 0, NULL},
    {"_answers", T_OBJECT_EX, offsetof(Core, answers), 0, NULL},
    {"_tokens", T_OBJECT_EX, offsetof(Core, tokens), 0, NULL},
    {"_events", T_OBJECT_EX, offsetof(Core, events), 0, NULL},
    {"_notes", T_OBJECT_EX, offsetof(Core, notes), 0, NULL},
    {"_cost", T_LONGLONG, offsetof(Core, cost), 0, NULL},
    {NULL, 0, 0, 0, NULL},
};

static PyTypeObject CoreType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "autotts.env._judgedc.SessionCore",
    .tp_basicsize = sizeof(Core),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "The state of a judged session and its advance() hot path (see autotts.env.judged).",
    .tp_new = PyType_GenericNew,
    .tp_dealloc = (destructor)core_dealloc,
    .tp_traverse = (traverseproc)core_traverse,
    .tp_clear = (inquiry)core_clear,
    .tp_methods = core_methods,
    .tp_members = core_members,
};

/* ================================================================== make_reveals */
/* make_reveals(branches, answers, finished, charges): the Reveal tuples of a step reply's columns
 * (i32 branch ids, the answer objects, u8 finished flags, i32 charges; see autotts.env.wire). */
static PyObject *
make_reveals(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 4 || !PyBytes_Check(args[0]) || !PyList_CheckExact(args[1]) || !PyBytes_Check(args[2]) ||
        !PyBytes_Check(args[3])) {
        PyErr_SetString(PyExc_TypeError, "make_reveals(branches: bytes, answers: list, finished: bytes, charges: bytes)");
        return NULL;
    }
    PyObject *answers = args[1];
    Py_ssize_t n = PyList_GET_SIZE(answers);
    if (PyBytes_GET_SIZE(args[0]) != 4 * n || PyBytes_GET_SIZE(args[2]) != n || PyBytes_GET_SIZE(args[3]) != 4 * n) {
        PyErr_SetString(PyExc_ValueError, "the reveal columns differ in length");
        return NULL;
    }
    const char *bcol = PyBytes_AS_STRING(args[0]), *fcol = PyBytes_AS_STRING(args[2]);
    const char *ccol = PyBytes_AS_STRING(args[3]);
    PyObject *out = PyList_New(n);
    if (out == NULL)
        return NULL;
    PyTypeObject *tp = (PyTypeObject *)RevealType;
    /* Most charges of a frame are the same Δ: share that int object instead of making one per reveal. */
    PyObject *last = NULL;
    int32_t last_c = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        int32_t b, c;
        memcpy(&b, bcol + 4 * i, 4);
        memcpy(&c, ccol + 4 * i, 4);
        PyObject *bo = PyLong_FromLong(b);
        PyObject *co;
        if (last != NULL && c == last_c) {
            co = last;
            Py_INCREF(co);
        }
        else {
            co = PyLong_FromLong(c);
            if (co != NULL) {
                Py_XSETREF(last, co);
                Py_INCREF(co);
                last_c = c;
            }
        }
        PyObject *r = (bo && co) ? tp->tp_alloc(tp, 4) : NULL;
        if (r == NULL) {
            Py_XDECREF(bo);
            Py_XDECREF(co);
            Py_XDECREF(last);
            Py_DECREF(out);
            return NULL;
        }
        PyObject *a = PyList_GET_ITEM(answers, i);
        PyObject *f = fcol[i] ? Py_True : Py_False;
        Py_INCREF(a);
        Py_INCREF(f);
        PyTuple_SET_ITEM(r, 0, bo);
        PyTuple_SET_ITEM(r, 1, a);
        PyTuple_SET_ITEM(r, 2, f);
        PyTuple_SET_ITEM(r, 3, co);
        PyList_SET_ITEM(out, i, r);
    }
    Py_XDECREF(last);
    return out;
}

static PyMethodDef module_methods[] = {
    {"make_reveals", (PyCFunction)(void (*)(void))make_reveals, METH_FASTCALL,
     "make_reveals(branches, answers, finished, charges): the Reveal tuples of a step reply's columns."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef judgedc_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "autotts.env._judgedc",
    .m_doc = "The candidate process's per-action path of a judged session, in C (see the source's header).",
    .m_size = -1,
    .m_methods = module_methods,
};

PyMODINIT_FUNC
PyInit__judgedc(void)
{
    PyObject *session = PyImport_ImportModule("autotts.env.session");
    if (session == NULL)
        return NULL;
    RevealType = PyObject_GetAttrString(session, "Reveal");
    Py_DECREF(session);
    if (RevealType == NULL)
        return NULL;
    if (!PyType_Check(RevealType) || !PyType_IsSubtype((PyTypeObject *)RevealType, &PyTuple_Type)) {
        PyErr_SetString(PyExc_TypeError, "autotts.env.session.Reveal is not a tuple type");
        return NULL;
    }
    PyObject *greenlet = PyImport_ImportModule("greenlet");
    if (greenlet == NULL)
        return NULL;
    GreenletType = (PyTypeObject *)PyObject_GetAttrString(greenlet, "greenlet");
    Py_DECREF(greenlet);
    if (GreenletType == NULL)
        return NULL;
    if (!PyType_Check(GreenletType)) {
        PyErr_SetString(PyExc_TypeError, "greenlet.greenlet is not a type");
        return NULL;
    }
    greenlet_switch = PyObject_GetAttrString((PyObject *)GreenletType, "switch");
    if (greenlet_switch == NULL)
        return NULL;
    str_switch = PyUnicode_InternFromString("switch");
    str_advance_py = PyUnicode_InternFromString("_advance_py");
    str_refused = PyUnicode_InternFromString("_refused");
    str_send = PyUnicode_InternFromString("send");
    ONE = PyLong_FromLong(1);
    STEP_DONE = PyObject_CallNoArgs((PyObject *)&PyBaseObject_Type);
    START_NEXT = PyObject_CallNoArgs((PyObject *)&PyBaseObject_Type);
    if (!str_switch || !str_advance_py || !str_refused || !str_send || !ONE || !STEP_DONE || !START_NEXT)
        return NULL;
    if (PyType_Ready(&RelayType) < 0 || PyType_Ready(&CoreType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&judgedc_module);
    if (m == NULL)
        return NULL;
    if (PyModule_AddObjectRef(m, "Relay", (PyObject *)&RelayType) < 0 ||
        PyModule_AddObjectRef(m, "SessionCore", (PyObject *)&CoreType) < 0 ||
        PyModule_AddIntConstant(m, "ABI", JUDGEDC_ABI) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
