/*
 * `idle FIFO [SECONDS]`: an idle process that says it is running.
 *
 * Writes one byte to FIFO as soon as it runs, then sleeps like `sleep SECONDS` (default
 * 1000). The start-up benchmark reads the FIFO: the 50th byte is the moment the 50th
 * instance is really running, measured the same way for every runner and without
 * polling /proc. It dies on SIGTERM/SIGINT like sleep does.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 2) return 2;
    int fd = open(argv[1], O_WRONLY);
    if (fd >= 0) {
        (void)write(fd, "x", 1);
        close(fd);
    }
    alarm(argc > 2 ? (unsigned)atoi(argv[2]) : 1000u);
    pause();
    return 0;
}
