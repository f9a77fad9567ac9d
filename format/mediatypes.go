package format

// Media types and annotation keys of OCIv2 (SPEC.md §6).
const (
	// MediaTypePackIndex is a pack index blob (binary, SPEC.md §5.3).
	MediaTypePackIndex = "application/vnd.oci2.packindex.v1"
	// MediaTypeTreePack is a pack whose chunks are tree objects.
	MediaTypeTreePack = "application/vnd.oci2.pack.tree.v1"
	// MediaTypeDataPack is a pack whose chunks are file data.
	MediaTypeDataPack = "application/vnd.oci2.pack.data.v1"

	// AnnotationRoot on the image manifest holds the root tree digest.
	AnnotationRoot = "org.oci2.root"
	// AnnotationFormat on the image manifest holds the format version ("1").
	AnnotationFormat = "org.oci2.format"
	// AnnotationPackIndex on a pack descriptor names its pack index blob.
	AnnotationPackIndex = "org.oci2.pack.index"

	// PlatformFeature is added to platform.os.features of every manifest
	// descriptor in an OCIv2 image index, so that stock clients (BuildKit,
	// containerd, docker) find no matching platform and stop before they
	// fetch anything, instead of treating the image as an empty base
	// (SPEC.md §6.2, §6.3).
	PlatformFeature = "org.oci2.v1"

	// FormatVersion is the value of AnnotationFormat written by this version.
	FormatVersion = "1"
)

// Media types of Docker's manifests, read wherever OCI ones are (stock
// registries and tools still produce them).
const (
	MediaTypeDockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
	MediaTypeDockerList     = "application/vnd.docker.distribution.manifest.list.v2+json"
	MediaTypeDockerConfig   = "application/vnd.docker.container.image.v1+json"
)

// MaxIndexDepth bounds the nesting of image indexes wherever an image graph
// is read (index, gc, check, pull, import): the root is at depth 0, and a
// descriptor at depth MaxIndexDepth or deeper is refused.
const MaxIndexDepth = 8

// MaxManifestSize bounds an image manifest or image index wherever one is
// read or written (the limit containerd and distribution apply).
const MaxManifestSize = 4 << 20
