package convert

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Transport is where an ordinary OCI image lives.
type Transport string

// Transports, spelled as in skopeo.
const (
	// TransportOCI is an OCI image layout directory: "oci:DIR[:REF]".
	TransportOCI Transport = "oci"
	// TransportArchive is a tar of an OCI image layout: "oci-archive:FILE[:REF]".
	TransportArchive Transport = "oci-archive"
)

// Location is a parsed "oci:DIR[:REF]" or "oci-archive:FILE[:REF]".
type Location struct {
	Transport Transport
	Path      string
	// Ref selects an image of the layout's index.json: a tag or full name
	// matched against org.opencontainers.image.ref.name, or "@N" for the
	// N-th manifest (reading only). Empty: the only image.
	Ref string
}

// String returns the location in skopeo syntax.
func (l Location) String() string {
	if l.Ref == "" {
		return string(l.Transport) + ":" + l.Path
	}
	return string(l.Transport) + ":" + l.Path + ":" + l.Ref
}

// index returns N for a Ref "@N", or -1.
func (l Location) index() int {
	s, ok := strings.CutPrefix(l.Ref, "@")
	if !ok {
		return -1
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return -1
	}
	return n
}

// refNameRE is the grammar of org.opencontainers.image.ref.name from the
// image-spec annotations document; umoci refuses names outside it.
var refNameRE = regexp.MustCompile(`^[A-Za-z0-9]+(?:(?:[-._:@+]|--)[A-Za-z0-9]+)*(?:/[A-Za-z0-9]+(?:(?:[-._:@+]|--)[A-Za-z0-9]+)*)*$`)

// ParseLocation parses skopeo's syntax. As in skopeo, the path ends at the
// first colon after the transport, so it cannot contain one.
func ParseLocation(s string) (Location, error) {
	tr, rest, ok := strings.Cut(s, ":")
	if !ok {
		return Location{}, fmt.Errorf("parsing image location %q: want oci:DIR[:REF] or oci-archive:FILE[:REF]", s)
	}
	var l Location
	switch Transport(tr) {
	case TransportOCI, TransportArchive:
		l.Transport = Transport(tr)
	default:
		return Location{}, fmt.Errorf("parsing image location %q: unknown transport %q (want oci or oci-archive)", s, tr)
	}
	l.Path, l.Ref, _ = strings.Cut(rest, ":")
	if l.Path == "" {
		return Location{}, fmt.Errorf("parsing image location %q: empty path", s)
	}
	if _, hasRef := strings.CutPrefix(rest, l.Path+":"); hasRef && l.Ref == "" {
		return Location{}, fmt.Errorf("parsing image location %q: empty reference after ':'", s)
	}
	if l.Ref != "" && strings.HasPrefix(l.Ref, "@") && l.index() < 0 {
		return Location{}, fmt.Errorf("parsing image location %q: %q is not @N with N a manifest number", s, l.Ref)
	}
	if l.Ref != "" && l.index() < 0 && !refNameRE.MatchString(l.Ref) {
		return Location{}, fmt.Errorf("parsing image location %q: invalid reference name %q", s, l.Ref)
	}
	return l, nil
}
