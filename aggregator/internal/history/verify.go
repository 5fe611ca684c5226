package history

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/VictoriaMetrics/VictoriaMetrics/lib/encoding"
)

// ErrDamaged marks a history store whose part files cannot be read.
var ErrDamaged = errors.New("history store is damaged")

// Files of a data part (lib/storage) and of an index part (lib/mergeset).
var (
	dataPartFiles  = []string{"metadata.json", "metaindex.bin", "index.bin", "timestamps.bin", "values.bin"}
	indexPartFiles = []string{"metadata.json", "metaindex.bin", "index.bin", "items.bin", "lens.bin"}
)

// verifyParts checks, before VictoriaMetrics opens dir, what it reads of
// each part at open: the part lists, each part's metadata.json and its
// compressed metaindex.bin, and that the other files are there. The lib
// reads these in its own goroutines and panics on damage, which would end
// the process with a stack trace instead of an error naming the file
// (found by damaging a metaindex.bin: issue 16). Damage inside the data
// blocks shows only when they are read: `storage check` reads them all.
func verifyParts(dir string) error {
	partitions, _ := filepath.Glob(filepath.Join(dir, "data", "small", "*"))
	for _, p := range partitions {
		var names struct{ Small, Big []string }
		ok, err := readJSON(filepath.Join(p, "parts.json"), &names)
		if err != nil || !ok {
			if err != nil {
				return err
			}
			continue
		}
		for _, n := range names.Small {
			if err := verifyPart(filepath.Join(p, n), dataPartFiles); err != nil {
				return err
			}
		}
		for _, n := range names.Big {
			if err := verifyPart(filepath.Join(dir, "data", "big", filepath.Base(p), n), dataPartFiles); err != nil {
				return err
			}
		}
	}
	indexes, _ := filepath.Glob(filepath.Join(dir, "data", "indexdb", "*"))
	for _, p := range indexes {
		var names []string
		ok, err := readJSON(filepath.Join(p, "parts.json"), &names)
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		for _, n := range names {
			if err := verifyPart(filepath.Join(p, n), indexPartFiles); err != nil {
				return err
			}
		}
	}
	return nil
}

// readJSON reads a JSON file into v; ok is false when it does not exist.
func readJSON(path string, v any) (ok bool, err error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, damaged(path, err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return false, damaged(path, err)
	}
	return true, nil
}

func verifyPart(part string, files []string) error {
	for _, f := range files {
		fi, err := os.Stat(filepath.Join(part, f))
		if err != nil {
			return damaged(filepath.Join(part, f), err)
		}
		if !fi.Mode().IsRegular() {
			return damaged(filepath.Join(part, f), errors.New("not a regular file"))
		}
	}
	var meta map[string]any
	if _, err := readJSON(filepath.Join(part, "metadata.json"), &meta); err != nil {
		return err
	}
	mi := filepath.Join(part, "metaindex.bin")
	b, err := os.ReadFile(mi)
	if err != nil {
		return damaged(mi, err)
	}
	data, err := encoding.DecompressZSTD(nil, b)
	if err == nil && len(data) == 0 {
		err = errors.New("empty metaindex")
	}
	if err != nil {
		return damaged(mi, err)
	}
	return nil
}

func damaged(file string, err error) error {
	return fmt.Errorf("%w: cannot read %s (%v)", ErrDamaged, file, err)
}
