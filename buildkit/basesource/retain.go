package basesource

import (
	"context"
	"maps"
	"time"

	"github.com/oci2/oci2/buildkit/exporter"
	"github.com/oci2/oci2/store"
)

// markManaged stamps the ref name with exporter.AnnotationExported = now,
// which puts it under the daemon's retention ([oci2] keep-bytes,
// keep-duration: oldest first). Pulled bases get it when pulled; a ref
// that has it gets a new time each time a build uses it, so bases in use
// are the last to go. Refs without it (oci2 import, oci2 create, oci2 tag)
// stay the user's: only marked when the daemon pulled them (force).
func markManaged(ctx context.Context, st store.Refs, name string, force bool) error {
	desc, err := st.GetRef(ctx, name)
	if err != nil {
		return err
	}
	if _, ok := desc.Annotations[exporter.AnnotationExported]; !ok && !force {
		return nil
	}
	desc.Annotations = maps.Clone(desc.Annotations)
	if desc.Annotations == nil {
		desc.Annotations = map[string]string{}
	}
	desc.Annotations[exporter.AnnotationExported] = time.Now().UTC().Format(time.RFC3339Nano)
	return st.SetRef(ctx, name, desc)
}
