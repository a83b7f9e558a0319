/* sandbox_exec.c -- run a command under a unit's RestrictAddressFamilies=, as systemd
 * would: a seccomp filter that makes socket(2) fail with EAFNOSUPPORT for any address
 * family not listed (systemd's own behaviour for that setting). Lets systemd_units.sh
 * run lbd with the families its shipped unit allows, on a machine without systemd as
 * PID 1.
 *
 * usage: sandbox_exec AF_UNIX,AF_INET,... -- COMMAND [ARG...] */
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

static const struct {
    const char *name;
    int family;
} families[] = {{"AF_UNIX", AF_UNIX},       {"AF_INET", AF_INET},     {"AF_INET6", AF_INET6},
                {"AF_NETLINK", AF_NETLINK}, {"AF_PACKET", AF_PACKET}, {NULL, 0}};

int main(int argc, char **argv)
{
    if (argc < 4 || strcmp(argv[2], "--") != 0) {
        fprintf(stderr, "usage: %s AF_X,AF_Y,... -- COMMAND [ARG...]\n", argv[0]);
        return 2;
    }
    int allowed[16], n = 0;
    char list[256];
    snprintf(list, sizeof(list), "%s", argv[1]);
    for (char *save = NULL, *t = strtok_r(list, ", ", &save); t; t = strtok_r(NULL, ", ", &save)) {
        int i = 0;
        while (families[i].name && strcmp(families[i].name, t) != 0)
            i++;
        if (families[i].name == NULL || n == 16) {
            fprintf(stderr, "sandbox_exec: unknown address family %s\n", t);
            return 2;
        }
        allowed[n++] = families[i].family;
    }
    /* arch check; syscall != socket: allow; family (args[0]) in the list: allow; else
     * EAFNOSUPPORT. */
    struct sock_filter f[64];
    int k = 0;
    f[k++] =
        (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch));
    f[k++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0);
    f[k++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
    f[k++] =
        (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr));
    f[k++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_socket, 1, 0);
    f[k++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
    f[k++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
                                          offsetof(struct seccomp_data, args[0]));
    for (int i = 0; i < n; i++) {
        f[k++] =
            (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (unsigned)allowed[i], 0, 1);
        f[k++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
    }
    f[k++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EAFNOSUPPORT);
    struct sock_fprog prog = {.len = (unsigned short)k, .filter = f};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
        prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0) {
        perror("sandbox_exec: seccomp");
        return 1;
    }
    execvp(argv[3], argv + 3);
    perror("sandbox_exec: exec");
    return 127;
}
