/*
 * The log writer every runner gets: `writer TAG N [LINGER]`.
 *
 * Prints N short lines `TAG:1` .. `TAG:N`, then `TAG:END`, as fast as it can, through
 * stdio with its default buffering (block-buffered to a pipe or file, like `seq` or most
 * programs), then flushes. The numbers are formatted by incrementing a decimal string in
 * place, so the writer itself costs far less than printf and the runner's overhead shows.
 *
 * LINGER > 0: after the last line, stay alive (pause) for up to LINGER seconds. Honcho and
 * node-foreman stop every process when the first one exits, which would cut off the other
 * writers; lingering writers make every runner keep running until all lines are out, and
 * the benchmark ends the measurement when the output file holds every `TAG:END`. The
 * alarm is a safety net: a lingering writer never outlives its deadline.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: writer TAG N [LINGER_SECONDS]\n");
        return 2;
    }
    const char *tag = argv[1];
    long n = atol(argv[2]);
    int linger = argc > 3 ? atoi(argv[3]) : 0;

    /* line = TAG ':' digits '\n'; digits grow leftwards inside num[] */
    char line[256];
    size_t taglen = strlen(tag);
    if (taglen > 200) return 2;
    memcpy(line, tag, taglen);
    line[taglen] = ':';
    char num[24];
    int start = sizeof num - 1; /* index of the first digit */
    num[start] = '0';

    for (long i = 1; i <= n; i++) {
        /* increment the decimal counter */
        int k = sizeof num - 1;
        while (k >= start && num[k] == '9') num[k--] = '0';
        if (k < start) num[--start] = '1';
        else num[k]++;
        size_t len = sizeof num - start;
        memcpy(line + taglen + 1, num + start, len);
        line[taglen + 1 + len] = '\n';
        fwrite(line, 1, taglen + 2 + len, stdout);
    }
    printf("%s:END\n", tag);
    fflush(stdout);
    if (linger > 0) {
        alarm((unsigned)linger);
        pause();
    }
    return 0;
}
