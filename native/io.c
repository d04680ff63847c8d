/*
 * The proxy's socket reads and writes on plain connections, batched per event-loop turn.
 *
 * Hand-written because it is the hot path and Node has no API for it: Node calls into JavaScript
 * once per socket read (a C++ MakeCallback, the stream's read callback) and runs its Writable
 * machinery per write (a WriteWrap, a nextTick), which at pipeline 1 is most of a worker's user
 * time (bench/README.md, "The Node floor"). Here each socket is read by a libuv poll handle on a
 * dup of its descriptor, every read of one turn lands in one shared buffer, and JavaScript is
 * called once per turn (from a check handle, right after the poll phase) with the list of reads;
 * writes are plain write(2) / writev(2) calls that return what the kernel took, JavaScript handing
 * any rest to the socket's stream. Node keeps owning each socket (connect, close, shutdown,
 * timers, backpressure on its own writes); its reading is off for a socket read here.
 *
 * The descriptor is dup'ed because libuv keeps one watcher per descriptor: a poll handle on the
 * socket's own descriptor would take the place of the TCP handle's watcher, which a write that
 * fills the kernel's buffer needs. The dup is closed when JavaScript unwatches the socket (on its
 * 'close'), which is when the connection is really released.
 *
 * Built by scripts/build-native.mjs; loaded, and fallen back from, by src/proxy/io.ts.
 */
#define _GNU_SOURCE
#define NAPI_VERSION 8
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/uio.h>
#include <unistd.h>
#include <node_api.h>
#include <uv.h>

struct Io;

typedef struct Watch {
  uv_poll_t poll;
  struct Io* io;
  int fd;      /* our dup of the socket's descriptor */
  int32_t id;  /* index in io.table, the id JavaScript knows the socket by */
  int reading; /* the poll handle is started */
  int ended;   /* EOF or an error was reported: nothing more is read */
  int counted; /* closed by teardown, which waits for it */
} Watch;

/* One per Node environment (the main thread, each worker thread: a busy proxy runs in one). */
typedef struct Io {
  napi_env env;
  napi_ref callback, buffer_ref, events_ref, resource_ref;
  napi_async_context async;
  uv_loop_t* loop;
  uv_check_t check;
  uint8_t* buf; /* the reads of one turn, back to back */
  size_t cap, used;
  int32_t* events; /* per read: id, offset in buf, length (0: EOF, < 0: -errno) */
  size_t max_events, count;
  Watch** table;
  size_t table_size;
  int32_t* free_ids; /* ids free to reuse */
  size_t free_count;
  int32_t* freed_ids; /* ids unwatched since the last delivery: reused only after it */
  size_t freed_count;
  int ready;
  size_t closing; /* handles closed at the environment's teardown, not yet called back */
  int finalized;  /* the environment's instance data was released: free once closing is 0 */
  napi_async_cleanup_hook_handle cleanup;
} Io;

static Io* state(napi_env env) {
  void* data = NULL;
  napi_get_instance_data(env, &data);
  return (Io*)data;
}

#define CHECK(call)                                                      \
  do {                                                                   \
    if ((call) != napi_ok) {                                             \
      napi_throw_error(env, NULL, "dredis native io: " #call " failed"); \
      return NULL;                                                       \
    }                                                                    \
  } while (0)

static void record(Io* io, int32_t id, int32_t offset, int32_t length) {
  int32_t* e = io->events + io->count * 3;
  e[0] = id;
  e[1] = offset;
  e[2] = length;
  io->count++;
}

static void stop_reading(Watch* w) {
  if (w->reading) {
    uv_poll_stop(&w->poll);
    w->reading = 0;
  }
}

static void end_with(Watch* w, int32_t length) {
  stop_reading(w);
  w->ended = 1;
  record(w->io, w->id, 0, length);
}

static void on_readable(uv_poll_t* handle, int status, int events) {
  Watch* w = (Watch*)handle->data;
  Io* io = w->io;
  (void)events;
  /* Full (events or buffer): left for the next turn; the poll is level-triggered. */
  if (io->count >= io->max_events || io->used == io->cap) return;
  if (status < 0) {
    end_with(w, status);
    return;
  }
  ssize_t n;
  do n = read(w->fd, io->buf + io->used, io->cap - io->used);
  while (n < 0 && errno == EINTR);
  if (n > 0) {
    record(io, w->id, (int32_t)io->used, (int32_t)n);
    io->used += (size_t)n;
  } else if (n == 0) {
    end_with(w, 0);
  } else if (errno != EAGAIN && errno != EWOULDBLOCK) {
    end_with(w, -errno);
  }
}

static void deliver(uv_check_t* handle) {
  Io* io = (Io*)handle->data;
  while (io->freed_count > 0) io->free_ids[io->free_count++] = io->freed_ids[--io->freed_count];
  if (io->count == 0) return;
  napi_env env = io->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  napi_value callback, recv, argv[1], result;
  napi_get_reference_value(env, io->callback, &callback);
  napi_get_global(env, &recv);
  napi_create_uint32(env, (uint32_t)io->count, &argv[0]);
  io->count = 0;
  /* Like Node's own read callbacks: process.nextTick and microtasks run when it returns. */
  napi_status status = napi_make_callback(env, io->async, recv, callback, 1, argv, &result);
  io->used = 0;
  if (status == napi_pending_exception) {
    napi_value error;
    napi_get_and_clear_last_exception(env, &error);
    napi_fatal_exception(env, error);
  }
  napi_close_handle_scope(env, scope);
}

static void on_closed(uv_handle_t* handle);

/* The environment is going away (a worker thread's exit, the process's): every handle of ours on
 * its loop is closed first, or the loop could not close. */
static void teardown(napi_async_cleanup_hook_handle hook, void* arg) {
  Io* io = (Io*)arg;
  (void)hook;
  if (io->ready) {
    for (size_t id = 0; id < io->table_size; id++) {
      Watch* w = io->table[id];
      if (w == NULL) continue;
      io->table[id] = NULL;
      w->counted = 1;
      io->closing++;
      uv_close((uv_handle_t*)&w->poll, on_closed);
      close(w->fd);
    }
    io->closing++;
    uv_close((uv_handle_t*)&io->check, on_closed);
  } else {
    napi_remove_async_cleanup_hook(io->cleanup);
  }
}

static void free_io(Io* io) {
  free(io->table);
  free(io->free_ids);
  free(io->freed_ids);
  free(io);
}

static void closed_one(Io* io) {
  if (--io->closing > 0) return;
  napi_remove_async_cleanup_hook(io->cleanup);
  if (io->finalized) free_io(io);
}

static void on_closed(uv_handle_t* handle) {
  if (handle->type == UV_POLL) {
    Watch* w = (Watch*)handle->data;
    Io* io = w->io;
    int counted = w->counted;
    free(w);
    if (counted) closed_one(io);
  } else {
    closed_one((Io*)handle->data);
  }
}

/* Whichever comes last of this and the teardown's closes frees the state. */
static void finalize(napi_env env, void* data, void* hint) {
  Io* io = (Io*)data;
  (void)env;
  (void)hint;
  io->finalized = 1;
  if (io->closing == 0) free_io(io);
}

/* init(buffer: Buffer, events: Int32Array, callback: (count: number) => void) */
static napi_value Init(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  Io* io = state(env);
  if (io->ready) {
    napi_throw_error(env, NULL, "dredis native io: init called twice");
    return NULL;
  }
  void* data;
  size_t length;
  CHECK(napi_get_buffer_info(env, argv[0], &data, &length));
  napi_typedarray_type type;
  size_t elements;
  void* events;
  CHECK(napi_get_typedarray_info(env, argv[1], &type, &elements, &events, NULL, NULL));
  if (type != napi_int32_array || elements < 3 || length == 0) {
    napi_throw_type_error(env, NULL, "dredis native io: init(Buffer, Int32Array, Function)");
    return NULL;
  }
  io->buf = data;
  io->cap = length;
  io->events = events;
  io->max_events = elements / 3;
  CHECK(napi_create_reference(env, argv[0], 1, &io->buffer_ref));
  CHECK(napi_create_reference(env, argv[1], 1, &io->events_ref));
  CHECK(napi_create_reference(env, argv[2], 1, &io->callback));
  napi_value resource, name;
  CHECK(napi_create_object(env, &resource));
  CHECK(napi_create_reference(env, resource, 1, &io->resource_ref));
  CHECK(napi_create_string_utf8(env, "dredis.io", NAPI_AUTO_LENGTH, &name));
  CHECK(napi_async_init(env, resource, name, &io->async));
  CHECK(napi_get_uv_event_loop(env, &io->loop));
  uv_check_init(io->loop, &io->check);
  io->check.data = io;
  uv_check_start(&io->check, deliver);
  uv_unref((uv_handle_t*)&io->check);
  io->ready = 1;
  return NULL;
}

static int32_t int_arg(napi_env env, napi_value value) {
  int32_t out = -1;
  napi_get_value_int32(env, value, &out);
  return out;
}

static Watch* lookup(napi_env env, Io* io, napi_value value) {
  int32_t id = int_arg(env, value);
  if (id < 0 || (size_t)id >= io->table_size) return NULL;
  return io->table[id];
}

/* watch(fd) -> id >= 0, or -errno: reads the socket from now on */
static napi_value WatchFd(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], out;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  Io* io = state(env);
  if (!io->ready) {
    napi_throw_error(env, NULL, "dredis native io: watch before init");
    return NULL;
  }
  int fd = int_arg(env, argv[0]);
  int copy = fd < 0 ? -1 : fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (copy < 0) {
    CHECK(napi_create_int32(env, fd < 0 ? -EBADF : -errno, &out));
    return out;
  }
  int32_t id;
  if (io->free_count > 0) {
    id = io->free_ids[--io->free_count];
  } else {
    if (io->table_size % 1024 == 0) {
      size_t size = io->table_size + 1024;
      io->table = realloc(io->table, size * sizeof(Watch*));
      io->free_ids = realloc(io->free_ids, size * sizeof(int32_t));
      io->freed_ids = realloc(io->freed_ids, size * sizeof(int32_t));
    }
    id = (int32_t)io->table_size++;
  }
  Watch* w = calloc(1, sizeof(Watch));
  w->io = io;
  w->fd = copy;
  w->id = id;
  int err = uv_poll_init(io->loop, &w->poll, copy);
  w->poll.data = w;
  if (err == 0) err = uv_poll_start(&w->poll, UV_READABLE, on_readable);
  if (err != 0) {
    io->free_ids[io->free_count++] = id;
    close(copy);
    free(w);
    CHECK(napi_create_int32(env, err, &out));
    return out;
  }
  io->table[id] = w;
  uv_unref((uv_handle_t*)&w->poll); /* the socket's own handle keeps the loop alive */
  w->reading = 1;
  CHECK(napi_create_int32(env, id, &out));
  return out;
}

/* unwatch(id): stops reading and closes the dup at once, so that the connection is released when
 * the socket's own descriptor is (a close delayed to the next turn let a shard run a client's later
 * command before it saw a Pub/Sub connection close). uv_close stops the poll and drops the
 * descriptor from libuv's epoll set synchronously; only its callback waits, and it touches no
 * descriptor (one closed before uv_close could be reused by then, and be dropped in its place).
 * Reads of the id recorded this turn are still delivered; the id is reused only after that. */
static napi_value Unwatch(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  Io* io = state(env);
  Watch* w = lookup(env, io, argv[0]);
  if (w == NULL) return NULL;
  stop_reading(w);
  io->table[w->id] = NULL;
  io->freed_ids[io->freed_count++] = w->id;
  uv_close((uv_handle_t*)&w->poll, on_closed);
  close(w->fd);
  return NULL;
}

/* pause(id, paused): stops or restarts reading (backpressure) */
static napi_value Pause(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  Watch* w = lookup(env, state(env), argv[0]);
  if (w == NULL || w->ended) return NULL;
  bool paused = false;
  CHECK(napi_get_value_bool(env, argv[1], &paused));
  if (paused) {
    stop_reading(w);
  } else if (!w->reading) {
    if (uv_poll_start(&w->poll, UV_READABLE, on_readable) == 0) w->reading = 1;
  }
  return NULL;
}

static napi_value written(napi_env env, ssize_t n) {
  napi_value out;
  CHECK(napi_create_int32(env, n < 0 ? -errno : (int32_t)n, &out));
  return out;
}

/* write(fd, buffer) -> bytes the kernel took, or -errno (-EAGAIN: none) */
static napi_value Write(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int fd = int_arg(env, argv[0]);
  void* data;
  size_t length;
  CHECK(napi_get_buffer_info(env, argv[1], &data, &length));
  if (length > INT32_MAX) length = INT32_MAX;
  ssize_t n;
  do n = write(fd, data, length);
  while (n < 0 && errno == EINTR);
  return written(env, n);
}

/* writev(fd, buffers) -> bytes the kernel took, or -errno; at most IOV_MAX buffers are tried */
static napi_value Writev(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int fd = int_arg(env, argv[0]);
  uint32_t count;
  CHECK(napi_get_array_length(env, argv[1], &count));
  if (count > IOV_MAX) count = IOV_MAX;
  struct iovec iov[IOV_MAX];
  size_t total = 0;
  uint32_t used = 0;
  for (; used < count; used++) {
    napi_value element;
    CHECK(napi_get_element(env, argv[1], used, &element));
    CHECK(napi_get_buffer_info(env, element, &iov[used].iov_base, &iov[used].iov_len));
    if (total + iov[used].iov_len > INT32_MAX) break;
    total += iov[used].iov_len;
  }
  ssize_t n;
  do n = writev(fd, iov, (int)used);
  while (n < 0 && errno == EINTR);
  return written(env, n);
}

NAPI_MODULE_INIT(/* napi_env env, napi_value exports */) {
  Io* io = calloc(1, sizeof(Io));
  io->env = env;
  if (napi_set_instance_data(env, io, finalize, NULL) != napi_ok) return NULL;
  if (napi_add_async_cleanup_hook(env, teardown, io, &io->cleanup) != napi_ok) return NULL;
  napi_property_descriptor props[] = {
      {"init", NULL, Init, NULL, NULL, NULL, napi_enumerable, NULL},
      {"watch", NULL, WatchFd, NULL, NULL, NULL, napi_enumerable, NULL},
      {"unwatch", NULL, Unwatch, NULL, NULL, NULL, napi_enumerable, NULL},
      {"pause", NULL, Pause, NULL, NULL, NULL, napi_enumerable, NULL},
      {"write", NULL, Write, NULL, NULL, NULL, napi_enumerable, NULL},
      {"writev", NULL, Writev, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  if (napi_define_properties(env, exports, sizeof(props) / sizeof(props[0]), props) != napi_ok) return NULL;
  return exports;
}
