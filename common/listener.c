/* listener.c -- see listener.h. */
#include "listener.h"

#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>

int listener_drop_pending(uv_stream_t *server)
{
    uv_os_fd_t lfd;
    if (uv_fileno((uv_handle_t *)server, &lfd) != 0)
        return -EBADF;
    int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0)
        return -errno;
    close(fd);
    return 0;
}
