/*
 * test_tree.c — the sorted-children index: find, insert at the found position (growing past
 * the first capacity), order by (length, bytes), empty levels, and remove.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
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
    bool found;
    size_t i = tree_find(&root->t, tree_test_str(level), &found);
    struct tnode *k;

    assert_false(found);
    k = tree_node_new(sizeof(*k), &root->t, tree_test_str(level));
    assert_non_null(k);
    k->tag = tag;
    assert_int_equal(tree_insert(&root->t, i, &k->t), 0);
    return k;
}

static int lookup(struct tnode *root, const char *level)
{
    bool found;
    size_t i = tree_find(&root->t, tree_test_str(level), &found);

    return found ? ((struct tnode *)root->t.kids[i])->tag : -1;
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
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(lookup(root, names[i]), (int)i);
        assert_ptr_equal(kids[i]->t.parent, &root->t);
    }
    assert_int_equal(lookup(root, "abc"), -1);
    /* sorted by length, then bytes */
    for (size_t i = 1; i < n; i++) {
        const struct tree_node *x = root->t.kids[i - 1], *y = root->t.kids[i];
        assert_true(x->len < y->len ||
                    (x->len == y->len && memcmp(x->level, y->level, x->len) < 0));
    }
    /* remove every other one; the rest stay findable */
    for (size_t i = 0; i < n; i += 2) {
        tree_remove(&kids[i]->t);
        tree_node_free(&kids[i]->t);
    }
    assert_int_equal(root->t.nkids, n / 2);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(lookup(root, names[i]), i % 2 ? (int)i : -1);
    for (size_t i = 1; i < n; i += 2) {
        tree_remove(&kids[i]->t);
        tree_node_free(&kids[i]->t);
    }
    assert_int_equal(root->t.nkids, 0);
    tree_node_free(&root->t);
    tree_node_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(find_insert_remove),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
