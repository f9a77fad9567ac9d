package exporter

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/moby/buildkit/exporter/containerimage"
	"github.com/moby/buildkit/exporter/util/epoch"

	"github.com/oci2/oci2/internal/refname"
)

// Attribute keys of --output type=oci2,KEY=VALUE; the same spelling as
// BuildKit's image exporter (exptypes.OptKey*).
const (
	// KeyName names the image in the daemon's store: one or more names
	// separated by commas or spaces, normalized docker-style
	// ("hello" is docker.io/library/hello:latest).
	// Value: string
	KeyName = "name"

	// KeyPush pushes the image, after it is stored, to every name in name
	// (the registry is the name's host), with the client's credentials.
	// Value: bool <true|false>
	KeyPush = "push"

	// KeyPushByDigest pushes without a tag (the image is reachable by its
	// digest only); needs push=true.
	// Value: bool <true|false>
	KeyPushByDigest = "push-by-digest"

	// KeyInsecure allows pushing to a registry over plain HTTP or with a
	// certificate that does not verify (as the image exporter's).
	// Value: bool <true|false>
	KeyInsecure = "registry.insecure"

	// KeyIdleTimeout bounds every wait of push=true on the registry: a
	// request whose body it stops reading, whose answer does not come, or
	// whose answer's body moves less than 4 KiB in that long is abandoned,
	// retried, then fails the export (default 60s; oci2's own spelling).
	// Value: duration (Go syntax: 30s, 2m)
	KeyIdleTimeout = "registry.idle-timeout"

	// KeyRewriteTimestamp clamps every mtime later than the SOURCE_DATE_EPOCH
	// to it, as the stock exporters do.
	// Value: bool <true|false>
	KeyRewriteTimestamp = "rewrite-timestamp"

	// KeySourceDateEpoch is added by BuildKit from the SOURCE_DATE_EPOCH
	// build arg; it clamps the config's created time (and, with
	// rewrite-timestamp=true, the file mtimes).
	// Value: int (seconds since the Unix epoch)
	KeySourceDateEpoch = "source-date-epoch"
)

// annotationPrefixes are the stock annotation keys (annotation.KEY,
// annotation-manifest[PLATFORM].KEY, ...), parsed by BuildKit's own
// containerimage.ParseAnnotations.
var annotationPrefixes = []string{
	"annotation.", "annotation[",
	"annotation-manifest.", "annotation-manifest[",
	"annotation-manifest-descriptor.", "annotation-manifest-descriptor[",
	"annotation-index.", "annotation-index[",
	"annotation-index-descriptor.", "annotation-index-descriptor[",
}

// ignoredKeys are keys that BuildKit clients send to every exporter on
// their own; they do not apply to this exporter and are accepted without
// effect so that stock clients keep working.
var ignoredKeys = map[string]string{
	// buildx < 0.11 and the daemon's legacy build info.
	"buildinfo":       "build info is not embedded",
	"buildinfo-attrs": "build info is not embedded",
}

// Attrs are the parsed and validated exporter attributes.
type Attrs struct {
	Names            []string // normalized, in the order given, no duplicates
	Push             bool
	PushByDigest     bool
	Insecure         bool
	IdleTimeout      time.Duration // 0: the registry client's default
	RewriteTimestamp bool
	// Epoch is the SOURCE_DATE_EPOCH given as an attribute (nil: take it from
	// the frontend's result metadata, if any).
	Epoch       *time.Time
	Annotations containerimage.AnnotationsGroup
}

// ValidKeys lists the keys ParseAttrs accepts (besides the annotation keys).
func ValidKeys() []string {
	keys := []string{KeyName, KeyPush, KeyPushByDigest, KeyInsecure, KeyIdleTimeout, KeyRewriteTimestamp, KeySourceDateEpoch}
	keys = append(keys, slices.Collect(maps.Keys(ignoredKeys))...)
	slices.Sort(keys)
	return keys
}

// ParseAttrs parses the attributes of --output type=oci2. An unknown key is
// an error naming the valid keys: a typo must not pass silently.
func ParseAttrs(attrs map[string]string) (*Attrs, error) {
	var a Attrs
	bytesMap := make(map[string][]byte, len(attrs))
	for k, v := range attrs {
		bytesMap[k] = []byte(v)
	}
	ag, rest, err := containerimage.ParseAnnotations(bytesMap)
	if err != nil {
		return nil, fmt.Errorf("oci2 exporter: %w", err)
	}
	a.Annotations = ag

	ep, restStr, err := epoch.ParseExporterAttrs(toStringMap(rest))
	if err != nil {
		return nil, fmt.Errorf("oci2 exporter: %w", err)
	}
	if ep != nil {
		a.Epoch = ep.Value
	}

	// Sorted, so that the first error reported does not depend on map order.
	for _, k := range slices.Sorted(maps.Keys(restStr)) {
		v := restStr[k]
		switch k {
		case KeyName:
			if a.Names, err = parseNames(v); err != nil {
				return nil, err
			}
		case KeyPush:
			err = parseBool(&a.Push, k, v)
		case KeyPushByDigest:
			err = parseBool(&a.PushByDigest, k, v)
		case KeyInsecure:
			err = parseBool(&a.Insecure, k, v)
		case KeyIdleTimeout:
			if a.IdleTimeout, err = time.ParseDuration(v); err == nil && a.IdleTimeout <= 0 {
				err = fmt.Errorf("not positive")
			}
			if err != nil {
				err = fmt.Errorf("oci2 exporter: %s=%q: want a positive duration (30s, 2m): %w", k, v, err)
			}
		case KeyRewriteTimestamp:
			err = parseBool(&a.RewriteTimestamp, k, v)
		default:
			if _, ok := ignoredKeys[k]; ok {
				continue
			}
			if isAnnotationKey(k) {
				// ParseAnnotations returns annotation keys it accepted; a
				// key left here with an annotation prefix is malformed.
				return nil, fmt.Errorf("oci2 exporter: invalid annotation key %q", k)
			}
			return nil, fmt.Errorf("oci2 exporter: unknown attribute %q (valid: %s, and annotation keys annotation[-manifest|-index][-descriptor][PLATFORM].NAME)",
				k, strings.Join(ValidKeys(), ", "))
		}
		if err != nil {
			return nil, err
		}
	}
	if a.Push && len(a.Names) == 0 {
		return nil, fmt.Errorf("oci2 exporter: push=true needs name= (the registry and repository to push to)")
	}
	if a.PushByDigest && !a.Push {
		return nil, fmt.Errorf("oci2 exporter: push-by-digest=true needs push=true")
	}
	return &a, nil
}

func isAnnotationKey(k string) bool {
	return strings.HasPrefix(k, "annotation")
}

// parseNames splits a name list ("a,b" or "a b") and normalizes each name.
func parseNames(v string) ([]string, error) {
	fields := strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\n' })
	var names []string
	for _, f := range fields {
		r, err := refname.Parse(f)
		if err != nil {
			return nil, fmt.Errorf("oci2 exporter: name=%q: %w", f, err)
		}
		if r.Name == "" || r.Digest != "" {
			return nil, fmt.Errorf("oci2 exporter: name=%q: a name must be a repository with an optional tag, not a digest", f)
		}
		if !slices.Contains(names, r.Name) {
			names = append(names, r.Name)
		}
	}
	return names, nil
}

func parseBool(dst *bool, k, v string) error {
	b, err := strconv.ParseBool(v)
	if err != nil {
		return fmt.Errorf("oci2 exporter: %s=%q: not a bool", k, v)
	}
	*dst = b
	return nil
}

func toStringMap(m map[string][]byte) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = string(v)
	}
	return out
}
