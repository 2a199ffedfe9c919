/*
 * kvm-client: a small KVM user of /dev/kvm, run inside the Linux guest whose
 * own KVM is the L1 hypervisor on Vigil's soft CPU (docs/notify.md, "Linux's
 * KVM as L1").
 *
 * It opens /dev/kvm, enables KVM_CAP_X86_NOTIFY_VMEXIT (ENABLED | USER,
 * window 0) where KVM_CHECK_EXTENSION says the processor has it, and runs one VM per L2
 * payload:
 *
 *   io-hlt     real mode: OUT to port 0x10, then HLT   (KVM_EXIT_IO, _HLT)
 *   loop-hlt   real mode: 200,000 loop iterations, a second OUT, HLT
 *   ac-storm   protected mode at CPL 3, CR0.AM and EFLAGS.AC set, a
 *              misaligned stack: every #AC delivery raises #AC again
 *              (CVE-2015-5307). KVM intercepts #AC and re-injects it. On
 *              VMX the re-injected #AC faults during its own delivery, and
 *              KVM refuses an exception exit with valid IDT-vectoring
 *              information: KVM_EXIT_INTERNAL_ERROR, suberror
 *              KVM_INTERNAL_ERROR_SIMUL_EX. Where KVM re-injects for ever
 *              (SVM), a timer signal after 200 ms ends KVM_RUN
 *              (KVM_EXIT_INTR). Either way the storm is contained.
 *
 * Every exit is printed on one line starting with "kvm-client:". A
 * KVM_EXIT_NOTIFY with KVM_NOTIFY_CONTEXT_INVALID stops that VM (its state
 * cannot be trusted); the client then goes on with the next payload, which
 * shows that L1 survived. After each VM the client prints KVM's own per-vCPU
 * statistics "exits" and "notify_window_exits", read through
 * KVM_GET_STATS_FD.
 *
 * The last line is "kvm-client: done, N failures"; the exit status is 0 when
 * every payload ended as expected.
 *
 * Build: gcc -static -O2 -o kvm-client kvm-client.c
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/time.h>
#include <unistd.h>

#define MEM_SIZE 0x10000
#define CODE_ADDR 0x1000
#define GDT_ADDR 0x2000
#define IDT_ADDR 0x3000
#define STACK_TOP 0x8000
#define IO_PORT 0x10
/* KVM_EXIT_NOTIFY and friends, for headers older than Linux 6.0. */
#ifndef KVM_CAP_X86_NOTIFY_VMEXIT
#define KVM_CAP_X86_NOTIFY_VMEXIT 219
#endif
#ifndef KVM_EXIT_NOTIFY
#define KVM_EXIT_NOTIFY 37
#endif
#ifndef KVM_NOTIFY_CONTEXT_INVALID
#define KVM_NOTIFY_CONTEXT_INVALID 1
#endif
#define NOTIFY_ENABLED 1
#define NOTIFY_USER 2

/* mov dx, 0x10; mov al, 0x42; out dx, al; hlt */
static const uint8_t io_hlt[] = {0xBA, 0x10, 0x00, 0xB0, 0x42, 0xEE, 0xF4};
/* mov ecx, 200000; l: dec ecx; jnz l; mov dx, 0x10; mov al, 0x4C; out dx, al; hlt */
static const uint8_t loop_hlt[] = {0x66, 0xB9, 0x40, 0x0D, 0x03, 0x00, 0x66, 0x49,
                                   0x75, 0xFC, 0xBA, 0x10, 0x00, 0xB0, 0x4C, 0xEE,
                                   0xF4};
/* 32-bit, CPL 3, misaligned ESP: push eax raises #AC, and so does every
 * delivery of it (the handler is this same code). */
static const uint8_t ac_storm[] = {0x50, 0xEB, 0xFE};

enum mode { REAL, PROT_CPL3_AC };

struct payload {
    const char *name;
    const uint8_t *code;
    size_t len;
    enum mode mode;
    /* the exit that ends the payload as expected */
    uint32_t final_exit;
};

/* Whether exit `reason` (with `run`'s details) ends payload `p` as expected. */
static int expected_end(const struct payload *p, uint32_t reason, const struct kvm_run *run)
{
    if (reason == p->final_exit)
        return 1;
    /* The #AC storm on VMX: KVM's answer to a fault during the delivery of
     * the #AC it re-injected. */
    return p->final_exit == KVM_EXIT_INTR && reason == KVM_EXIT_INTERNAL_ERROR &&
           run->internal.suberror == KVM_INTERNAL_ERROR_SIMUL_EX;
}

static const struct payload payloads[] = {
    {"io-hlt", io_hlt, sizeof io_hlt, REAL, KVM_EXIT_HLT},
    {"loop-hlt", loop_hlt, sizeof loop_hlt, REAL, KVM_EXIT_HLT},
    {"ac-storm", ac_storm, sizeof ac_storm, PROT_CPL3_AC, KVM_EXIT_INTR},
    {"io-hlt", io_hlt, sizeof io_hlt, REAL, KVM_EXIT_HLT},
};

static int kvm_fd;
static int notify_on;

static void on_alarm(int sig) { (void)sig; }

static const char *exit_name(uint32_t r)
{
    switch (r) {
    case KVM_EXIT_IO: return "KVM_EXIT_IO";
    case KVM_EXIT_HLT: return "KVM_EXIT_HLT";
    case KVM_EXIT_INTR: return "KVM_EXIT_INTR";
    case KVM_EXIT_NOTIFY: return "KVM_EXIT_NOTIFY";
    case KVM_EXIT_SHUTDOWN: return "KVM_EXIT_SHUTDOWN";
    case KVM_EXIT_FAIL_ENTRY: return "KVM_EXIT_FAIL_ENTRY";
    case KVM_EXIT_INTERNAL_ERROR: return "KVM_EXIT_INTERNAL_ERROR";
    case KVM_EXIT_MMIO: return "KVM_EXIT_MMIO";
    default: return "KVM_EXIT_OTHER";
    }
}

/* Prints the named cumulative statistics of a vCPU from KVM_GET_STATS_FD. */
static void print_stats(int vcpu, const char *payload)
{
    int fd = ioctl(vcpu, KVM_GET_STATS_FD, NULL);
    if (fd < 0) {
        printf("kvm-client: %s: KVM_GET_STATS_FD failed: %s\n", payload, strerror(errno));
        return;
    }
    struct kvm_stats_header h;
    if (pread(fd, &h, sizeof h, 0) != sizeof h) {
        printf("kvm-client: %s: stats header unreadable\n", payload);
        close(fd);
        return;
    }
    size_t desc_size = sizeof(struct kvm_stats_desc) + h.name_size;
    char *descs = malloc(desc_size * h.num_desc);
    if (!descs || pread(fd, descs, desc_size * h.num_desc, h.desc_offset) !=
                      (ssize_t)(desc_size * h.num_desc)) {
        printf("kvm-client: %s: stats descriptors unreadable\n", payload);
        free(descs);
        close(fd);
        return;
    }
    printf("kvm-client: %s: stats", payload);
    for (uint32_t i = 0; i < h.num_desc; i++) {
        struct kvm_stats_desc *d = (struct kvm_stats_desc *)(descs + i * desc_size);
        if (strcmp(d->name, "exits") && strcmp(d->name, "notify_window_exits") &&
            strcmp(d->name, "halt_exits") && strcmp(d->name, "io_exits"))
            continue;
        uint64_t v = 0;
        if (pread(fd, &v, sizeof v, h.data_offset + d->offset) == sizeof v)
            printf(" %s=%llu", d->name, (unsigned long long)v);
    }
    printf("\n");
    free(descs);
    close(fd);
}

static void set_seg(struct kvm_segment *s, uint16_t sel, uint8_t type, uint8_t dpl, int code)
{
    memset(s, 0, sizeof *s);
    s->base = 0;
    s->limit = 0xFFFFFFFF;
    s->selector = sel;
    s->type = type;
    s->present = 1;
    s->dpl = dpl;
    s->db = 1;
    s->s = 1;
    s->g = 1;
    (void)code;
}

/* GDT: null, ring-0 code, ring-0 data, ring-3 code, ring-3 data (flat). IDT:
 * vector 17 (#AC) an interrupt gate to the ring-3 code at CODE_ADDR. */
static void build_tables(uint8_t *mem)
{
    uint64_t gdt[5] = {0, 0x00CF9A000000FFFFull, 0x00CF92000000FFFFull,
                       0x00CFFA000000FFFFull, 0x00CFF2000000FFFFull};
    memcpy(mem + GDT_ADDR, gdt, sizeof gdt);
    uint64_t gate = (CODE_ADDR & 0xFFFF) | ((uint64_t)0x1B << 16) |
                    ((uint64_t)0xEE00 << 32) | ((uint64_t)(CODE_ADDR >> 16) << 48);
    memcpy(mem + IDT_ADDR + 17 * 8, &gate, sizeof gate);
}

static int setup_vcpu(int vcpu, const struct payload *p)
{
    struct kvm_sregs sregs;
    struct kvm_regs regs;
    if (ioctl(vcpu, KVM_GET_SREGS, &sregs) < 0)
        return -1;
    memset(&regs, 0, sizeof regs);
    if (p->mode == REAL) {
        struct kvm_segment *segs[] = {&sregs.cs, &sregs.ds, &sregs.es,
                                      &sregs.fs, &sregs.gs, &sregs.ss};
        for (unsigned i = 0; i < 6; i++) {
            segs[i]->base = 0;
            segs[i]->selector = 0;
        }
        regs.rip = CODE_ADDR;
        regs.rsp = STACK_TOP;
        regs.rflags = 0x2;
    } else {
        sregs.cr0 = 0x40011; /* PE, ET, AM */
        sregs.gdt.base = GDT_ADDR;
        sregs.gdt.limit = 5 * 8 - 1;
        sregs.idt.base = IDT_ADDR;
        sregs.idt.limit = 32 * 8 - 1;
        set_seg(&sregs.cs, 0x1B, 0xB, 3, 1);
        set_seg(&sregs.ss, 0x23, 0x3, 3, 0);
        set_seg(&sregs.ds, 0x23, 0x3, 3, 0);
        set_seg(&sregs.es, 0x23, 0x3, 3, 0);
        set_seg(&sregs.fs, 0x23, 0x3, 3, 0);
        set_seg(&sregs.gs, 0x23, 0x3, 3, 0);
        regs.rip = CODE_ADDR;
        regs.rsp = STACK_TOP + 1; /* misaligned */
        regs.rflags = 0x40002;    /* AC */
    }
    if (ioctl(vcpu, KVM_SET_SREGS, &sregs) < 0)
        return -1;
    return ioctl(vcpu, KVM_SET_REGS, &regs);
}

/* Runs one payload in a VM of its own; returns 0 when it ended as expected. */
static int run_payload(const struct payload *p)
{
    int failed = 1;
    int vm = ioctl(kvm_fd, KVM_CREATE_VM, 0);
    if (vm < 0) {
        printf("kvm-client: %s: KVM_CREATE_VM failed: %s\n", p->name, strerror(errno));
        return 1;
    }
    if (notify_on) {
        struct kvm_enable_cap cap = {.cap = KVM_CAP_X86_NOTIFY_VMEXIT};
        cap.args[0] = NOTIFY_ENABLED | NOTIFY_USER; /* window 0 in bits 63:32 */
        if (ioctl(vm, KVM_ENABLE_CAP, &cap) < 0) {
            printf("kvm-client: %s: KVM_ENABLE_CAP(NOTIFY_VMEXIT) failed: %s\n", p->name,
                   strerror(errno));
            close(vm);
            return 1;
        }
    }
    uint8_t *mem = mmap(NULL, MEM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) {
        printf("kvm-client: %s: mmap failed\n", p->name);
        close(vm);
        return 1;
    }
    memcpy(mem + CODE_ADDR, p->code, p->len);
    build_tables(mem);
    struct kvm_userspace_memory_region region = {
        .slot = 0, .guest_phys_addr = 0, .memory_size = MEM_SIZE, .userspace_addr = (uint64_t)mem};
    int vcpu = -1;
    struct kvm_run *run = MAP_FAILED;
    int run_size = ioctl(kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
    if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &region) < 0 ||
        (vcpu = ioctl(vm, KVM_CREATE_VCPU, 0)) < 0 || run_size <= 0 ||
        (run = mmap(NULL, run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0)) == MAP_FAILED ||
        setup_vcpu(vcpu, p) < 0) {
        printf("kvm-client: %s: VM setup failed: %s\n", p->name, strerror(errno));
        goto out;
    }
    printf("kvm-client: %s: running L2\n", p->name);
    fflush(stdout);
    if (p->final_exit == KVM_EXIT_INTR) {
        struct itimerval t = {.it_value = {.tv_usec = 200000}};
        setitimer(ITIMER_REAL, &t, NULL);
    }
    for (int n = 0; n < 10000; n++) {
        int r = ioctl(vcpu, KVM_RUN, 0);
        if (r < 0 && errno != EINTR) {
            printf("kvm-client: %s: KVM_RUN failed: %s\n", p->name, strerror(errno));
            goto out;
        }
        uint32_t reason = r < 0 ? KVM_EXIT_INTR : run->exit_reason;
        switch (reason) {
        case KVM_EXIT_IO: {
            uint8_t v = *((uint8_t *)run + run->io.data_offset);
            printf("kvm-client: %s: KVM_EXIT_IO port=%#x %s size=%u value=%#x\n", p->name,
                   run->io.port, run->io.direction == KVM_EXIT_IO_OUT ? "out" : "in",
                   run->io.size, v);
            break;
        }
        case KVM_EXIT_NOTIFY:
            printf("kvm-client: %s: KVM_EXIT_NOTIFY flags=%#x%s\n", p->name, run->notify.flags,
                   run->notify.flags & KVM_NOTIFY_CONTEXT_INVALID ? " (context invalid)" : "");
            if (run->notify.flags & KVM_NOTIFY_CONTEXT_INVALID) {
                printf("kvm-client: %s: context invalid, VM stopped\n", p->name);
                failed = 0;
                goto out;
            }
            break;
        default:
            printf("kvm-client: %s: %s", p->name, exit_name(reason));
            if (reason == KVM_EXIT_FAIL_ENTRY)
                printf(" reason=%#llx",
                       (unsigned long long)run->fail_entry.hardware_entry_failure_reason);
            if (reason == KVM_EXIT_INTERNAL_ERROR)
                printf(" suberror=%u", run->internal.suberror);
            printf("\n");
            failed = !expected_end(p, reason, run);
            goto out;
        }
        fflush(stdout);
    }
    printf("kvm-client: %s: too many exits\n", p->name);
out:
    if (vcpu >= 0)
        print_stats(vcpu, p->name);
    if (p->final_exit == KVM_EXIT_INTR) {
        struct itimerval t = {{0, 0}, {0, 0}};
        setitimer(ITIMER_REAL, &t, NULL);
    }
    if (run != MAP_FAILED)
        munmap(run, run_size);
    if (vcpu >= 0)
        close(vcpu);
    munmap(mem, MEM_SIZE);
    close(vm);
    printf("kvm-client: %s: %s\n", p->name, failed ? "FAILED" : "ok");
    fflush(stdout);
    return failed;
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm; /* no SA_RESTART: KVM_RUN returns EINTR */
    sigaction(SIGALRM, &sa, NULL);
    kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (kvm_fd < 0) {
        printf("kvm-client: cannot open /dev/kvm: %s\n", strerror(errno));
        return 2;
    }
    printf("kvm-client: KVM API version %d\n", ioctl(kvm_fd, KVM_GET_API_VERSION, 0));
    int caps = ioctl(kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_X86_NOTIFY_VMEXIT);
    printf("kvm-client: KVM_CAP_X86_NOTIFY_VMEXIT = %#x\n", caps < 0 ? 0 : caps);
    /* KVM answers 1 when the processor has notify VM exiting (Linux 6.1's
     * kvm_caps.has_notify_vmexit); the flags are checked at KVM_ENABLE_CAP. */
    notify_on = caps > 0;
    if (notify_on)
        printf("kvm-client: notify VM exits enabled (ENABLED|USER, window 0)\n");
    int failures = 0;
    for (unsigned i = 0; i < sizeof payloads / sizeof payloads[0]; i++)
        failures += run_payload(&payloads[i]);
    printf("kvm-client: done, %d failures\n", failures);
    return failures ? 1 : 0;
}
