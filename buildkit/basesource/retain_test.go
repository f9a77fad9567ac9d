package basesource

import (
	"context"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/oci2/oci2/buildkit/exporter"
	"github.com/oci2/oci2/store/memstore"
)

// A pulled base is put under retention; a user's ref is not, however
// often builds use it; a managed ref's time moves on when used.
func TestMarkManaged(t *testing.T) {
	ctx := context.Background()
	st := memstore.New()
	b := []byte("{}")
	d := digest.FromBytes(b)
	if err := st.PutBlob(ctx, d, b); err != nil {
		t.Fatal(err)
	}
	desc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageIndex, Digest: d, Size: int64(len(b))}
	for _, n := range []string{"user", "pulled"} {
		if err := st.SetRef(ctx, n, desc); err != nil {
			t.Fatal(err)
		}
	}
	if err := markManaged(ctx, st, "user", false); err != nil {
		t.Fatal(err)
	}
	if got, _ := st.GetRef(ctx, "user"); got.Annotations[exporter.AnnotationExported] != "" {
		t.Errorf("a user's ref was put under retention: %v", got.Annotations)
	}
	if err := markManaged(ctx, st, "pulled", true); err != nil {
		t.Fatal(err)
	}
	first, _ := st.GetRef(ctx, "pulled")
	if err := markManaged(ctx, st, "pulled", false); err != nil {
		t.Fatal(err)
	}
	second, _ := st.GetRef(ctx, "pulled")
	t1, t2 := first.Annotations[exporter.AnnotationExported], second.Annotations[exporter.AnnotationExported]
	if t1 == "" || t2 < t1 {
		t.Errorf("pulled ref times %q then %q", t1, t2)
	}
}
