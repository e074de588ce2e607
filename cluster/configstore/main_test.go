package configstore

import (
	"testing"

	"github.com/procfleet/procfleet/internal/testenv"
)

func TestMain(m *testing.M) { testenv.MainWithLeakCheck(m) }
