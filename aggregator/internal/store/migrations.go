package store

import (
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// migrations lists the embedded migrations of dir in the order they
// apply: each name starts with its version, 1..n without gaps, and '_'.
func migrations(fsys fs.FS, dir string) ([]string, error) {
	files, err := fs.Glob(fsys, dir+"/*.sql")
	if err != nil {
		return nil, err
	}
	versions := make(map[string]int, len(files))
	for _, f := range files {
		num, _, ok := strings.Cut(filepath.Base(f), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("migration %s: name must start with a positive number and '_'", filepath.Base(f))
		}
		versions[f] = v
	}
	slices.SortFunc(files, func(a, b string) int { return versions[a] - versions[b] })
	for i, f := range files {
		if versions[f] != i+1 {
			return nil, fmt.Errorf("migrations must be numbered 1..n without gaps, found %d at position %d", versions[f], i+1)
		}
	}
	return files, nil
}
