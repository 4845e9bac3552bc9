/**
 * A hand-assembled classic-BPF seccomp filter for bwrap's `--seccomp FD`.
 *
 * bwrap wants the raw `struct sock_filter[]` bytes (what libseccomp's
 * seccomp_export_bpf writes). We only emit one for x86_64, where the syscall
 * numbers below are checked against <asm/unistd_64.h>; on other
 * architectures the caller runs without seccomp and the probe says so.
 */

// struct seccomp_data { int nr; __u32 arch; __u64 instruction_pointer; __u64 args[6]; }
const OFFSET_NR = 0
const OFFSET_ARCH = 4

const BPF_LD_W_ABS = 0x20 // BPF_LD | BPF_W | BPF_ABS
const BPF_JEQ_K = 0x15 // BPF_JMP | BPF_JEQ | BPF_K
const BPF_JGE_K = 0x35 // BPF_JMP | BPF_JGE | BPF_K
const BPF_RET_K = 0x06 // BPF_RET | BPF_K

const SECCOMP_RET_KILL_PROCESS = 0x80000000
const SECCOMP_RET_ERRNO = 0x00050000
const SECCOMP_RET_ALLOW = 0x7fff0000
const EPERM = 1
const ENOSYS = 38

const AUDIT_ARCH_X86_64 = 0xc000003e
/** x32 ABI syscalls have this bit set in nr on x86_64; they bypass a nr-based list */
const X32_SYSCALL_BIT = 0x40000000

/**
 * Syscalls a build never needs and that widen the kernel attack surface or
 * reach outside the sandbox. Returning EPERM (not killing) lets tools that
 * probe for a feature fall back gracefully.
 */
export const BLOCKED_SYSCALLS_X86_64: Readonly<Record<string, number>> = {
  ptrace: 101, // inspect/modify other processes
  syslog: 103, // kernel log
  uselib: 134,
  vhangup: 153,
  pivot_root: 155,
  adjtimex: 159,
  chroot: 161,
  acct: 163,
  settimeofday: 164,
  mount: 165, // no new mounts: the filesystem view is fixed by bwrap
  umount2: 166, // ... and cannot be peeled off to reveal what is underneath
  swapon: 167,
  swapoff: 168,
  reboot: 169,
  iopl: 172,
  ioperm: 173,
  init_module: 175,
  delete_module: 176,
  quotactl: 179,
  lookup_dcookie: 212,
  clock_settime: 227,
  kexec_load: 246,
  add_key: 248, // kernel keyrings are not namespaced
  request_key: 249,
  keyctl: 250,
  unshare: 272, // new namespaces are the classic way into kernel bugs
  perf_event_open: 298, // side channels, frequent CVEs
  name_to_handle_at: 303,
  open_by_handle_at: 304, // "shocker": opens files by handle, bypassing the mount view
  clock_adjtime: 305,
  setns: 308,
  process_vm_readv: 310,
  process_vm_writev: 311,
  finit_module: 313,
  kexec_file_load: 320,
  bpf: 321,
  userfaultfd: 323, // makes kernel race exploits reliable
  io_uring_setup: 425, // io_uring operations are not filtered by seccomp
  io_uring_enter: 426,
  io_uring_register: 427,
  open_tree: 428, // new mount API
  move_mount: 429,
  fsopen: 430,
  fsconfig: 431,
  fsmount: 432,
  fspick: 433,
  mount_setattr: 442
}

function insn (code: number, jt: number, jf: number, k: number): Buffer {
  const b = Buffer.alloc(8)
  b.writeUInt16LE(code, 0)
  b.writeUInt8(jt, 2)
  b.writeUInt8(jf, 3)
  b.writeUInt32LE(k >>> 0, 4)
  return b
}

/** true when this process's architecture has a filter here */
export function seccompSupported (arch: string = process.arch): boolean {
  return arch === 'x64'
}

/**
 * Returns the filter as bytes for `bwrap --seccomp FD`, or null when the
 * architecture is not supported.
 */
export function buildSeccompFilter (arch: string = process.arch): Buffer | null {
  if (!seccompSupported(arch)) {
    return null
  }
  const numbers = [...new Set(Object.values(BLOCKED_SYSCALLS_X86_64))].sort((a, b) => a - b)
  const prog: Buffer[] = []
  // A foreign ABI (i386 via int 0x80) would reinterpret every number: kill it.
  prog.push(insn(BPF_LD_W_ABS, 0, 0, OFFSET_ARCH))
  prog.push(insn(BPF_JEQ_K, 1, 0, AUDIT_ARCH_X86_64))
  prog.push(insn(BPF_RET_K, 0, 0, SECCOMP_RET_KILL_PROCESS))
  prog.push(insn(BPF_LD_W_ABS, 0, 0, OFFSET_NR))
  // x32 syscalls: nobody builds for x32 here; deny so the list cannot be bypassed.
  prog.push(insn(BPF_JGE_K, 0, 1, X32_SYSCALL_BIT))
  prog.push(insn(BPF_RET_K, 0, 0, SECCOMP_RET_ERRNO | ENOSYS))
  // Each blocked number jumps forward to the shared "deny" return.
  // Layout: [jeq n_0] ... [jeq n_{m-1}] [ret ALLOW] [ret ERRNO(EPERM)]
  const m = numbers.length
  numbers.forEach((nr, i) => {
    const toDeny = (m - 1 - i) + 1 // skip the remaining jeqs and the ALLOW
    prog.push(insn(BPF_JEQ_K, toDeny, 0, nr))
  })
  prog.push(insn(BPF_RET_K, 0, 0, SECCOMP_RET_ALLOW))
  prog.push(insn(BPF_RET_K, 0, 0, SECCOMP_RET_ERRNO | EPERM))
  return Buffer.concat(prog)
}
