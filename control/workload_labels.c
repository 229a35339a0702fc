/* A stream's workload labels (workload_labels.h). */
#include "workload_labels.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int cmp_label(const void *a, const void *b)
{
    const rm_label_t *x = a, *y = b;
    int c = strcmp(x->key, y->key);
    return c != 0 ? c : strcmp(x->value, y->value);
}

void rm_labels_free(rm_label_t *labels, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(labels[i].key);
        free(labels[i].value);
    }
    free(labels);
}

int rm_workload_labels_set(rm_workload_labels_t *wl, const char *ns, rm_label_t *labels, size_t n)
{
    size_t klen = strlen(ns) + 2, o;
    char *key;

    if (n > 1)
        qsort(labels, n, sizeof(*labels), cmp_label);
    for (size_t i = 0; i < n; i++)
        klen += strlen(labels[i].key) + strlen(labels[i].value) + 2;
    if ((key = malloc(klen)) == NULL) {
        rm_labels_free(labels, n);
        return -ENOMEM;
    }
    o = (size_t)snprintf(key, klen, "%s\n", ns);
    for (size_t i = 0; i < n; i++)
        o += (size_t)snprintf(key + o, klen - o, "%s=%s\n", labels[i].key, labels[i].value);
    rm_workload_labels_clear(wl);
    wl->labels = labels;
    wl->key = key;
    wl->xw.workload.namespace_ = ns;
    wl->xw.workload.labels = labels;
    wl->xw.workload.num_labels = n;
    wl->xw.key = key;
    return 0;
}

int rm_workload_labels_from_node(rm_workload_labels_t *wl, const char *ns, const Ringmesh__V1__Node *node)
{
    size_t n = node->n_labels, done = 0;
    rm_label_t *labels = NULL;

    if (n > 0 && (labels = calloc(n, sizeof(*labels))) == NULL)
        return -ENOMEM;
    for (; done < n; done++) {
        const char *k = node->labels[done]->key != NULL ? node->labels[done]->key : "";
        const char *v = node->labels[done]->value != NULL ? node->labels[done]->value : "";
        if ((labels[done].key = strdup(k)) == NULL || (labels[done].value = strdup(v)) == NULL) {
            free(labels[done].key);
            rm_labels_free(labels, done);
            return -ENOMEM;
        }
    }
    return rm_workload_labels_set(wl, ns, labels, n);
}

int rm_workload_labels_equal(const rm_workload_labels_t *wl, const rm_label_t *labels, size_t n)
{
    if (n != wl->xw.workload.num_labels)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (strcmp(labels[i].key, wl->labels[i].key) != 0 || strcmp(labels[i].value, wl->labels[i].value) != 0)
            return 0;
    return 1;
}

void rm_workload_labels_clear(rm_workload_labels_t *wl)
{
    rm_labels_free(wl->labels, wl->xw.workload.num_labels);
    free(wl->key);
    memset(wl, 0, sizeof(*wl));
}
