/*
 * test_tree.c — the children index: find, insert, empty levels and remove, below and past
 * TREE_INDEX_AT (a scan, then a hash index), positions kept dense, and a wide node growing and
 * shrinking through random removals that every lookup survives.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tree.h"

struct tnode {
    struct tree_node t;
    int tag;
};

static struct mqtt_str tree_test_str(const char *s)
{
    struct mqtt_str v = {(const uint8_t *)s, strlen(s)};
    return v;
}

static struct tnode *add(struct tnode *root, const char *level, int tag)
{
    struct tnode *k;

    assert_null(tree_find(&root->t, tree_test_str(level)));
    k = tree_node_new(sizeof(*k), &root->t, tree_test_str(level));
    assert_non_null(k);
    k->tag = tag;
    assert_int_equal(tree_insert(&root->t, &k->t), 0);
    return k;
}

static int lookup(struct tnode *root, const char *level)
{
    struct tnode *k = (struct tnode *)tree_find(&root->t, tree_test_str(level));

    return k ? k->tag : -1;
}

/* kids[i]->pos == i and parent set, for every child */
static void check_dense(const struct tnode *root)
{
    for (size_t i = 0; i < root->t.nkids; i++) {
        assert_int_equal(root->t.kids[i]->pos, i);
        assert_ptr_equal(root->t.kids[i]->parent, &root->t);
    }
}

static void find_insert_remove(void **state)
{
    static const char *const names[] = {"b", "a", "", "ab", "zz", "c", "aa", "+", "#", "bb"};
    size_t n = sizeof names / sizeof names[0];
    struct tnode *root = tree_node_new(sizeof(*root), NULL, tree_test_str(""));
    struct tnode *kids[10];

    (void)state;
    assert_non_null(root);
    assert_int_equal(lookup(root, "a"), -1); /* no children yet */
    for (size_t i = 0; i < n; i++)
        kids[i] = add(root, names[i], (int)i);
    assert_int_equal(root->t.nkids, n);
    assert_non_null(root->t.index); /* 10 > TREE_INDEX_AT */
    for (size_t i = 0; i < n; i++)
        assert_int_equal(lookup(root, names[i]), (int)i);
    assert_int_equal(lookup(root, "abc"), -1);
    assert_int_equal(lookup(root, "z"), -1);
    check_dense(root);
    /* remove every other one; the rest stay findable */
    for (size_t i = 0; i < n; i += 2) {
        tree_remove(&kids[i]->t);
        tree_node_free(&kids[i]->t);
        check_dense(root);
    }
    assert_int_equal(root->t.nkids, n / 2);
    assert_non_null(root->t.index); /* 5: above TREE_INDEX_AT / 2 */
    for (size_t i = 0; i < n; i++)
        assert_int_equal(lookup(root, names[i]), i % 2 ? (int)i : -1);
    for (size_t i = 1; i < n; i += 2) {
        tree_remove(&kids[i]->t);
        tree_node_free(&kids[i]->t);
        if (root->t.nkids <= TREE_INDEX_AT / 2)
            assert_null(root->t.index); /* back to a scan */
        for (size_t k = i + 2; k < n; k += 2)
            assert_int_equal(lookup(root, names[k]), (int)k);
    }
    assert_int_equal(root->t.nkids, 0);
    tree_node_free(&root->t);
    tree_node_free(NULL);
}

/* 20,000 siblings, half removed in a shuffled order, re-added, then all removed. */
static void wide_node(void **state)
{
    enum { N = 20000 };
    struct tnode *root = tree_node_new(sizeof(*root), NULL, tree_test_str(""));
    struct tnode **kids = calloc(N, sizeof(*kids));
    size_t *order = calloc(N, sizeof(*order));
    uint64_t seed = 88172645463325252ULL;
    char name[32];

    (void)state;
    assert_non_null(root);
    assert_non_null(kids);
    assert_non_null(order);
    for (size_t i = 0; i < N; i++) {
        snprintf(name, sizeof(name), "dev%zu", i);
        kids[i] = add(root, name, (int)i);
        order[i] = i;
    }
    for (size_t i = N - 1; i > 0; i--) {
        size_t j, t;
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        j = (size_t)(seed % (i + 1));
        t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    for (size_t k = 0; k < N / 2; k++) {
        size_t i = order[k];
        tree_remove(&kids[i]->t);
        tree_node_free(&kids[i]->t);
        kids[i] = NULL;
    }
    check_dense(root);
    assert_int_equal(root->t.nkids, N - N / 2);
    for (size_t i = 0; i < N; i++) {
        snprintf(name, sizeof(name), "dev%zu", i);
        assert_int_equal(lookup(root, name), kids[i] ? (int)i : -1);
    }
    for (size_t i = 0; i < N; i++) {
        if (kids[i])
            continue;
        snprintf(name, sizeof(name), "dev%zu", i);
        kids[i] = add(root, name, (int)i + N);
    }
    for (size_t i = 0; i < N; i++) {
        snprintf(name, sizeof(name), "dev%zu", i);
        assert_int_equal(lookup(root, name), kids[i]->tag);
    }
    for (size_t k = 0; k < N; k++) {
        size_t i = order[N - 1 - k];
        tree_remove(&kids[i]->t);
        tree_node_free(&kids[i]->t);
    }
    assert_int_equal(root->t.nkids, 0);
    assert_null(root->t.index);
    tree_node_free(&root->t);
    free(kids);
    free(order);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(find_insert_remove),
        cmocka_unit_test(wide_node),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
