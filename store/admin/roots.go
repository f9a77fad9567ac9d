package admin

import (
	"context"
	"fmt"

	"github.com/oci2/oci2/store"
)

// extraRoot is an entry of the store's list that is not a ref.
type extraRoot struct {
	store.Ref
	Entry int // position in the store's list, from 0
}

// String names the entry for messages.
func (r extraRoot) String() string {
	if r.Name == "" {
		return fmt.Sprintf("index.json entry %d (no name)", r.Entry)
	}
	return fmt.Sprintf("index.json entry %d (%s, shadowed by an earlier entry of that name)", r.Entry, r.Name)
}

// markExtra adds to g what the entries extra reach. Unlike a ref's, an
// entry's unreadable blobs do not stop GC: no oci2 command can name or
// remove an entry without a name, and what cannot be read is missing
// already; what can be read is kept.
func markExtra(ctx context.Context, r store.Reader, g *graph, extra []extraRoot) error {
	w := newWalker(r)
	for _, x := range extra {
		if err := ctx.Err(); err != nil {
			return err
		}
		w.walk(ctx, g, x.Descriptor)
	}
	g.Problems = nil
	return nil
}

// extraRoots returns the entries of st's list that are not refs.
func extraRoots(ctx context.Context, st store.RootLister) ([]extraRoot, error) {
	all, err := st.ListRoots(ctx)
	if err != nil {
		return nil, err
	}
	var extra []extraRoot
	seen := map[string]bool{}
	for i, r := range all {
		if r.Name != "" && !seen[r.Name] {
			seen[r.Name] = true
			continue
		}
		extra = append(extra, extraRoot{Ref: r, Entry: i})
	}
	return extra, nil
}
