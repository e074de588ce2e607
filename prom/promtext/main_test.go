package promtext

import (
	"testing"

	"github.com/procfleet/procfleet/internal/testenv"
)

// TestMain fails the package when goroutines outlive the tests.
func TestMain(m *testing.M) { testenv.MainWithLeakCheck(m) }
