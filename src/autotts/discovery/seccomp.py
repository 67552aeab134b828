"""A seccomp filter for the candidate process, built in Python (classic BPF) and installed with prctl.

Why a kernel filter: the candidate process holds no hidden data, but a Python-level escape
(frame walking, ``gc``, a reached ``os`` module) could still try to *fetch* data — open a store
file, connect to a socket, read the judge's memory, start a program — or to damage the run
(kill the judge, delete files). After the candidate module is compiled and the allowed modules
are imported, the child installs this filter; from then on the kernel answers ``EPERM`` to:

* every ``open``/``openat``/``openat2``/``creat`` (no file can be opened, whatever the path),
  ``open_by_handle_at``, ``io_uring`` (which can open files on its own);
* sockets (``socket``, ``socketpair``, ``connect``, ``bind``, ``listen``, ``accept``);
* new programs and processes: ``execve``/``execveat``, ``fork``/``vfork``, ``clone`` without
  ``CLONE_THREAD`` (threads stay possible, they are harmless) and ``clone3`` (``ENOSYS``, so
  a C library falls back to ``clone``, which is checked);
* reaching other processes: ``ptrace``, ``process_vm_readv``/``writev``, ``pidfd_*``, ``kill``,
  ``tkill``, ``tgkill`` to anything but itself, queued signals;
* writes to any descriptor but the judge channel and stderr (``write``, ``pwrite*``,
  ``writev``, ``pwritev*``, ``send*``, ``sendfile``, ``splice``, ``tee``, ``vmsplice``,
  ``copy_file_range``);
* changes to the file system (``unlink``, ``rename``, ``mkdir``, ``rmdir``, ``link``, ``symlink``,
  ``chmod``, ``chown``, ``truncate``, ``mknod``, ``utime*``) and to the system (``mount``,
  ``unshare``, ``setns``, ``chroot``, ``bpf``, ``perf_event_open``, ``userfaultfd``, keys, modules).

A foreign architecture's system call ABI (and x32) is refused as a whole. Only x86-64 is
described here; elsewhere :func:`install` returns a reason and the run refuses to start
unless ``sandbox.isolation = "process-only"``.
"""

from __future__ import annotations

import os
import struct

# linux/filter.h, linux/seccomp.h, linux/audit.h
_LD_W_ABS = 0x20
_JEQ_K = 0x15
_JGE_K = 0x35
_JSET_K = 0x45
_RET_K = 0x06
_RET_ALLOW = 0x7FFF0000
_RET_KILL_PROCESS = 0x80000000
_RET_ERRNO = 0x00050000
_EPERM = 1
_ENOSYS = 38
_AUDIT_ARCH_X86_64 = 0xC000003E
_X32_BIT = 0x40000000
_CLONE_THREAD = 0x00010000
_PR_SET_NO_NEW_PRIVS = 38
_PR_SET_SECCOMP = 22
_SECCOMP_MODE_FILTER = 2
# seccomp_data: int nr; u32 arch; u64 instruction_pointer; u64 args[6] (little-endian: low word first).
_OFF_NR, _OFF_ARCH, _OFF_ARG0 = 0, 4, 16

#: x86-64 numbers (asm/unistd_64.h) of the calls refused outright.
DENIED_X86_64: dict[str, int] = {
    "open": 2,
    "creat": 85,
    "openat": 257,
    "openat2": 437,
    "open_by_handle_at": 304,
    "name_to_handle_at": 303,
    "io_uring_setup": 425,
    "io_uring_enter": 426,
    "io_uring_register": 427,
    "socket": 41,
    "socketpair": 53,
    "connect": 42,
    "accept": 43,
    "accept4": 288,
    "bind": 49,
    "listen": 50,
    "execve": 59,
    "execveat": 322,
    "fork": 57,
    "vfork": 58,
    "ptrace": 101,
    "process_vm_readv": 310,
    "process_vm_writev": 311,
    "pidfd_open": 434,
    "pidfd_getfd": 438,
    "pidfd_send_signal": 424,
    "kill": 62,
    "tkill": 200,
    "rt_sigqueueinfo": 129,
    "rt_tgsigqueueinfo": 297,
    "sendfile": 40,
    "splice": 275,
    "tee": 276,
    "vmsplice": 278,
    "copy_file_range": 326,
    "unlink": 87,
    "unlinkat": 263,
    "rename": 82,
    "renameat": 264,
    "renameat2": 316,
    "mkdir": 83,
    "mkdirat": 258,
    "rmdir": 84,
    "link": 86,
    "linkat": 265,
    "symlink": 88,
    "symlinkat": 266,
    "chmod": 90,
    "fchmod": 91,
    "fchmodat": 268,
    "chown": 92,
    "fchown": 93,
    "lchown": 94,
    "fchownat": 260,
    "truncate": 76,
    "ftruncate": 77,
    "mknod": 133,
    "mknodat": 259,
    "utime": 132,
    "utimes": 235,
    "futimesat": 261,
    "utimensat": 280,
    "chroot": 161,
    "mount": 165,
    "open_tree": 428,
    "move_mount": 429,
    "fsopen": 430,
    "fsconfig": 431,
    "fsmount": 432,
    "fspick": 433,
    "unshare": 272,
    "setns": 308,
    "bpf": 321,
    "perf_event_open": 298,
    "userfaultfd": 323,
    "fanotify_init": 300,
    "mq_open": 240,
    "add_key": 248,
    "request_key": 249,
    "keyctl": 250,
    "init_module": 175,
    "finit_module": 313,
    "kexec_load": 246,
}
#: Calls that write to the descriptor in their first argument: allowed on the channel and stderr only.
WRITES_X86_64: dict[str, int] = {
    "write": 1,
    "pwrite64": 18,
    "writev": 20,
    "pwritev": 296,
    "pwritev2": 328,
    "sendto": 44,
    "sendmsg": 46,
    "sendmmsg": 307,
}
_CLONE, _CLONE3, _TGKILL = 56, 435, 234


def build_filter(write_fds: tuple[int, ...], pid: int) -> bytes:
    """The BPF program (``struct sock_filter[]``) for x86-64, as bytes.

    ``write_fds`` are the descriptors writes may go to; ``pid`` is the process itself
    (``tgkill`` to its own threads stays allowed: Python's ``signal.raise_signal`` uses it).
    """
    prog: list[tuple[int, int, int, int] | tuple[int, str, str, int]] = []
    labels: dict[str, int] = {}

    def op(code: int, k: int, jt: str = "", jf: str = "") -> None:
        prog.append((code, jt, jf, k))

    def label(name: str) -> None:
        labels[name] = len(prog)

    op(_LD_W_ABS, _OFF_ARCH)
    op(_JEQ_K, _AUDIT_ARCH_X86_64, "", "kill")
    op(_LD_W_ABS, _OFF_NR)
    op(_JGE_K, _X32_BIT, "deny")
    for nr in sorted(DENIED_X86_64.values()):
        op(_JEQ_K, nr, "deny")
    for nr in sorted(WRITES_X86_64.values()):
        op(_JEQ_K, nr, "fd")
    op(_JEQ_K, _CLONE, "clone")
    op(_JEQ_K, _CLONE3, "enosys")
    op(_JEQ_K, _TGKILL, "self")
    label("allow")
    op(_RET_K, _RET_ALLOW)
    label("fd")
    op(_LD_W_ABS, _OFF_ARG0)
    for fd in write_fds:
        op(_JEQ_K, fd, "ok")
    op(_RET_K, _RET_ERRNO | _EPERM)
    label("clone")
    op(_LD_W_ABS, _OFF_ARG0)
    op(_JSET_K, _CLONE_THREAD, "ok")
    op(_RET_K, _RET_ERRNO | _EPERM)
    label("self")
    op(_LD_W_ABS, _OFF_ARG0)
    op(_JEQ_K, pid, "ok")
    label("deny")
    op(_RET_K, _RET_ERRNO | _EPERM)
    label("enosys")
    op(_RET_K, _RET_ERRNO | _ENOSYS)
    label("kill")
    op(_RET_K, _RET_KILL_PROCESS)
    label("ok")  # classic BPF jumps only forward, so the sub-checks allow from here
    op(_RET_K, _RET_ALLOW)

    out = bytearray()
    for i, (code, jt, jf, k) in enumerate(prog):
        offsets = []
        for target in (jt, jf):
            if target == "":
                offsets.append(0)
                continue
            off = labels[str(target)] - (i + 1)
            if not 0 <= off <= 255:
                raise ValueError(f"seccomp: jump to {target} out of range at instruction {i}")
            offsets.append(off)
        out += struct.pack("<HBBI", code, offsets[0], offsets[1], k)
    return bytes(out)


def install(write_fds: tuple[int, ...]) -> str:
    """Install the filter on this process (and any thread it starts); return "" or why it could not."""
    if os.uname().machine != "x86_64":
        return f"no seccomp filter for the {os.uname().machine} architecture"
    try:
        import ctypes
    except ImportError as exc:  # pragma: no cover - CPython always has ctypes on Linux
        return f"ctypes unavailable: {exc}"
    raw = build_filter(tuple(write_fds), os.getpid())
    buf = ctypes.create_string_buffer(raw, len(raw))

    class _Prog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    fprog = _Prog(len(raw) // 8, ctypes.addressof(buf))
    try:
        libc = ctypes.CDLL(None, use_errno=True)
    except OSError as exc:
        return f"libc unavailable: {exc}"
    if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        return f"prctl(PR_SET_NO_NEW_PRIVS) failed: {os.strerror(ctypes.get_errno())}"
    if libc.prctl(_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0) != 0:
        return f"prctl(PR_SET_SECCOMP) failed: {os.strerror(ctypes.get_errno())}"
    return ""
