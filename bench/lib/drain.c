/*
 * `drain [-p MICROS] pipe|pty|pty-opost COMMAND [ARG...]`: the least any runner can cost.
 *
 * Runs COMMAND with its stdout and stderr on a pipe or on a new pseudo-terminal (its
 * controlling terminal, in a session of its own, as hlocal's `--tty` does), reads
 * everything with 64 KiB reads and throws it away, and exits with COMMAND's status.
 * `pty` keeps the terminal's standard modes (`\n` → `\r\n`); `pty-opost` turns output
 * processing off (`stty -opost`). No framing, no printing: the time this takes is what
 * the kernel and the program cost, the floor under every runner's pty path.
 *
 * `-p MICROS` pauses that long after each read. A pty's master gives at most 4 KiB per
 * read (the line discipline's buffer), and a reader that reads the moment data arrives
 * wakes once per line of a line-buffered writer; a short pause lets a whole buffer
 * gather, which is faster for a pty with its standard modes (measured: 1.34 s eager,
 * 0.65 s with 5 µs, for a million line-buffered writes).
 */
#define _GNU_SOURCE
#include <pty.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

static int open_pipe(int *reader, int *writer) {
    int fds[2];
    if (pipe(fds) < 0) return -1;
    *reader = fds[0];
    *writer = fds[1];
    return 0;
}

static int open_terminal(int *reader, int *writer, int output_processing) {
    if (openpty(reader, writer, NULL, NULL, NULL) < 0) return -1;
    if (output_processing) return 0;
    struct termios modes;
    if (tcgetattr(*writer, &modes) < 0) return -1;
    modes.c_oflag &= ~OPOST;
    return tcsetattr(*writer, TCSANOW, &modes);
}

static void exec_on(int writer, int terminal, char **command) {
    if (terminal) {
        setsid();
        ioctl(writer, TIOCSCTTY, 0);
    }
    dup2(writer, 1);
    dup2(writer, 2);
    execvp(command[0], command);
    _exit(127);
}

int main(int argc, char **argv) {
    useconds_t pause_micros = 0;
    if (argc > 2 && strcmp(argv[1], "-p") == 0) {
        pause_micros = (useconds_t)atoi(argv[2]);
        argv += 2;
        argc -= 2;
    }
    if (argc < 3) {
        fprintf(stderr, "usage: drain [-p MICROS] pipe|pty|pty-opost COMMAND [ARG...]\n");
        return 2;
    }
    int terminal = strcmp(argv[1], "pipe") != 0;
    int reader, writer;
    int opened = terminal ? open_terminal(&reader, &writer, strcmp(argv[1], "pty") == 0)
                          : open_pipe(&reader, &writer);
    if (opened < 0) {
        perror("drain");
        return 1;
    }
    pid_t child = fork();
    if (child == 0) {
        close(reader);
        exec_on(writer, terminal, argv + 2);
    }
    close(writer);
    static char buffer[65536];
    /* A pty's master reads EIO, not 0, once the child's side is closed. */
    while (read(reader, buffer, sizeof buffer) > 0) {
        if (pause_micros) usleep(pause_micros);
    }
    int status = 0;
    waitpid(child, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}
