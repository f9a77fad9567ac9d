package main

import (
	"bufio"
	"debug/buildinfo"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spdx/tools-golang/spdx/v2/common"
	spdx "github.com/spdx/tools-golang/spdx/v2/v2_3"
)

// pkg is one package found in a filesystem.
type pkg struct {
	name, version, purl, source string
}

// scan lists the packages of the filesystem at root as an SPDX 2.3
// document.
func scan(root, name string, created time.Time) (*spdx.Document, error) {
	var pkgs []pkg
	for _, f := range []func(string) ([]pkg, error){dbPackages, goBinaries} {
		p, err := f(root)
		if err != nil {
			return nil, err
		}
		pkgs = append(pkgs, p...)
	}
	slices.SortFunc(pkgs, func(a, b pkg) int { return strings.Compare(a.purl, b.purl) })
	pkgs = slices.CompactFunc(pkgs, func(a, b pkg) bool { return a.purl == b.purl })
	doc := &spdx.Document{
		SPDXVersion:       spdx.Version,
		DataLicense:       spdx.DataLicense,
		SPDXIdentifier:    "DOCUMENT",
		DocumentName:      name,
		DocumentNamespace: "https://oci2.invalid/sbom-scanner/" + name,
		CreationInfo: &spdx.CreationInfo{
			Creators: []common.Creator{{CreatorType: "Tool", Creator: "oci2-sbom-scanner (minimal fallback, not syft)"}},
			Created:  created.Format(time.RFC3339),
		},
	}
	for i, p := range pkgs {
		id := common.ElementID(fmt.Sprintf("Package-%d", i))
		doc.Packages = append(doc.Packages, &spdx.Package{
			PackageName:             p.name,
			PackageSPDXIdentifier:   id,
			PackageVersion:          p.version,
			PackageDownloadLocation: "NOASSERTION",
			PackageSourceInfo:       "found in " + p.source,
			PackageExternalReferences: []*spdx.PackageExternalReference{
				{Category: "PACKAGE-MANAGER", RefType: "purl", Locator: p.purl},
			},
		})
		doc.Relationships = append(doc.Relationships, &spdx.Relationship{
			RefA:         common.MakeDocElementID("", "DOCUMENT"),
			RefB:         common.MakeDocElementID("", string(id)),
			Relationship: "DESCRIBES",
		})
	}
	return doc, nil
}

// stanzas reads a file of "Key: value" records separated by blank lines
// (dpkg status; apk's installed database is the same with "K:value").
func stanzas(path, sep string) ([]map[string]string, error) {
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []map[string]string
	cur := map[string]string{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			if len(cur) > 0 {
				out = append(out, cur)
			}
			cur = map[string]string{}
			continue
		}
		if k, v, ok := strings.Cut(line, sep); ok && !strings.HasPrefix(line, " ") {
			cur[k] = strings.TrimSpace(v)
		}
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out, sc.Err()
}

// packageDB is a package manager's database of installed packages: a file
// of records with the package's name, version and architecture.
type packageDB struct {
	path                string // under the root
	name, version, arch string // record keys
	purlType, purlNS    string
	installed           func(rec map[string]string) bool
}

var packageDBs = []packageDB{
	{path: "var/lib/dpkg/status", name: "Package", version: "Version", arch: "Architecture", purlType: "deb", purlNS: "debian",
		installed: func(r map[string]string) bool { return strings.HasSuffix(r["Status"], " installed") }},
	{path: "lib/apk/db/installed", name: "P", version: "V", arch: "A", purlType: "apk", purlNS: "alpine",
		installed: func(map[string]string) bool { return true }},
}

// dbPackages lists the installed packages of every known database.
func dbPackages(root string) ([]pkg, error) {
	var out []pkg
	for _, db := range packageDBs {
		recs, err := stanzas(filepath.Join(root, db.path), ":")
		if err != nil {
			return nil, fmt.Errorf("%s: %w", db.path, err)
		}
		for _, r := range recs {
			if r[db.name] == "" || !db.installed(r) {
				continue
			}
			purl := fmt.Sprintf("pkg:%s/%s/%s@%s", db.purlType, db.purlNS, r[db.name], r[db.version])
			if a := r[db.arch]; a != "" {
				purl += "?arch=" + a
			}
			out = append(out, pkg{name: r[db.name], version: r[db.version], purl: purl, source: "/" + db.path})
		}
	}
	return out, nil
}

// goBinaries lists the modules Go executables were built from (their
// embedded build info).
func goBinaries(root string) ([]pkg, error) {
	var out []pkg
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return nil // unreadable entries are skipped, as scanners do
		}
		info, err := d.Info()
		if err != nil || info.Mode()&0o111 == 0 || info.Size() < 1024 {
			return nil
		}
		bi, err := buildinfo.ReadFile(p)
		if err != nil {
			return nil // not a Go binary
		}
		rel := "/" + strings.TrimPrefix(p, root+"/")
		mods := append([]*debugModule{{bi.Main.Path, bi.Main.Version}}, depsOf(bi)...)
		for _, m := range mods {
			if m.path == "" {
				continue
			}
			out = append(out, pkg{name: m.path, version: m.version,
				purl: fmt.Sprintf("pkg:golang/%s@%s", m.path, m.version), source: rel})
		}
		return nil
	})
	return out, err
}

type debugModule struct{ path, version string }

func depsOf(bi *buildinfo.BuildInfo) []*debugModule {
	var out []*debugModule
	for _, d := range bi.Deps {
		if d.Replace != nil {
			d = d.Replace
		}
		out = append(out, &debugModule{d.Path, d.Version})
	}
	return out
}
