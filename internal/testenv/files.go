package testenv

import (
	"os"
	"testing"
)

// CopyFile copies the file at from to a new file at to with permissions
// perm, failing the test on error.
func CopyFile(t testing.TB, from, to string, perm os.FileMode) {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, data, perm); err != nil {
		t.Fatal(err)
	}
}
