/* cfg_describe.c -- the configuration reference, printed from the loader's own tables
 * (see cfg_describe in cfg.h): --help and the man pages cannot drift from what is parsed. */
#include "cfg.h"

#include "parse.h"

#include <string.h>
#include <sys/socket.h>

static void format_ms(uint64_t ms, char *out, size_t n)
{
    if (ms == 0)
        snprintf(out, n, "0");
    else if (ms % 3600000 == 0)
        snprintf(out, n, "%lluh", (unsigned long long)(ms / 3600000));
    else if (ms % 60000 == 0)
        snprintf(out, n, "%llum", (unsigned long long)(ms / 60000));
    else if (ms % 1000 == 0)
        snprintf(out, n, "%llus", (unsigned long long)(ms / 1000));
    else
        snprintf(out, n, "%llums", (unsigned long long)ms);
}

static void describe_type(const struct cfg_field *f, char *out, size_t n)
{
    char a[32], b[32];
    size_t used = 0;
    if (f->type_doc) {
        snprintf(out, n, "%s", f->type_doc);
        return;
    }
    switch (f->type) {
    case CFG_STR:
        snprintf(out, n, "string (at most %zu characters)", f->size ? f->size - 1 : 0);
        break;
    case CFG_UINT:
        snprintf(out, n, "integer, %llu to %llu", (unsigned long long)f->min,
                 (unsigned long long)f->max);
        break;
    case CFG_BOOL:
        snprintf(out, n, "true or false");
        break;
    case CFG_DURATION:
        format_ms(f->min, a, sizeof(a));
        format_ms(f->max, b, sizeof(b));
        snprintf(out, n, "duration (like 250ms, 2s, 1m), %s to %s", a, b);
        break;
    case CFG_ENUM:
        used = (size_t)snprintf(out, n, "one of ");
        for (int i = 0; f->choices[i] && used < n; i++)
            used += (size_t)snprintf(out + used, n - used, "%s%s", i ? " | " : "", f->choices[i]);
        break;
    case CFG_ADDR:
        if (f->default_port)
            snprintf(out, n, "address host:port (port %d when omitted)", f->default_port);
        else
            snprintf(out, n, "address host:port");
        break;
    case CFG_SECTION:
        snprintf(out, n, "section");
        break;
    default:
        snprintf(out, n, "see below");
        break;
    }
}

/* "" when there is nothing to say (required keys, sections). */
static void describe_default(const struct cfg_field *f, const void *base, char *out, size_t n)
{
    out[0] = '\0';
    if (f->def_doc) {
        snprintf(out, n, "%s", f->def_doc);
        return;
    }
    if (base == NULL || f->required)
        return;
    const char *p = (const char *)base + f->off;
    switch (f->type) {
    case CFG_STR:
        snprintf(out, n, "%s", p[0] ? p : "none");
        break;
    case CFG_UINT:
        snprintf(out, n, "%u", *(const uint32_t *)p);
        break;
    case CFG_BOOL:
        snprintf(out, n, "%s", *(const bool *)p ? "true" : "false");
        break;
    case CFG_DURATION:
        format_ms(*(const uint64_t *)p, out, n);
        break;
    case CFG_ENUM:
        snprintf(out, n, "%s", f->choices[*(const int *)p]);
        break;
    case CFG_ADDR: {
        const struct sockaddr_storage *ss = (const struct sockaddr_storage *)p;
        if (ss->ss_family == 0)
            snprintf(out, n, "none");
        else
            format_sockaddr((const struct sockaddr *)ss, out, n);
        break;
    }
    default:
        break;
    }
}

/* roff: escape backslashes, and a leading dot or quote that would read as a request. */
static void roff_text(FILE *out, const char *s)
{
    if (*s == '.' || *s == '\'')
        fputs("\\&", out);
    for (; *s; s++) {
        if (*s == '\\')
            fputs("\\e", out);
        else if (*s == '-')
            fputs("\\-", out);
        else
            fputc(*s, out);
    }
}

/* Plain text, wrapped at 78 columns with the given indent. */
static void wrap(FILE *out, const char *s, int indent)
{
    int col = 0;
    while (*s) {
        const char *sp = strchr(s, ' ');
        int wl = sp ? (int)(sp - s) : (int)strlen(s);
        if (col == 0) {
            fprintf(out, "%*s", indent, "");
            col = indent;
        } else if (col + 1 + wl > 78) {
            fprintf(out, "\n%*s", indent, "");
            col = indent;
        } else {
            fputc(' ', out);
            col++;
        }
        fwrite(s, 1, (size_t)wl, out);
        col += wl;
        s += wl;
        while (*s == ' ')
            s++;
    }
    if (col)
        fputc('\n', out);
}

void cfg_describe(FILE *out, const struct cfg_field *fields, const void *defaults,
                  const char *prefix, bool roff)
{
    for (const struct cfg_field *f = fields; f->key; f++) {
        /* Every key is listed; one without doc says so, and a test fails on it. */
        const char *doc = f->doc ? f->doc : "(undocumented)";
        char path[256], type[256], def[256], line[600];
        snprintf(path, sizeof(path), "%s%s%s%s", prefix, prefix[0] ? "." : "", f->key,
                 f->list ? "[]" : "");
        describe_type(f, type, sizeof(type));
        describe_default(f, defaults, def, sizeof(def));
        snprintf(line, sizeof(line), "%s%s%s%s", type, f->required ? "; required" : "",
                 def[0] ? "; default " : "", def);
        if (roff) {
            fprintf(out, ".TP\n.B ");
            roff_text(out, path);
            fputc('\n', out);
            fputs(".I ", out);
            roff_text(out, line);
            fputs("\n.br\n", out);
            roff_text(out, doc);
            fputc('\n', out);
        } else {
            fprintf(out, "  %s\n", path);
            wrap(out, line, 6);
            wrap(out, doc, 6);
        }
        if (f->sub)
            cfg_describe(out, f->sub, f->list ? f->sub_defaults : (const char *)defaults + f->off,
                         path, roff);
    }
}
