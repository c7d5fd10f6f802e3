package providers_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/e2c-dev/e2c/providers"
)

// The reasons a kept reservation cannot serve read as themselves, within
// the caller's sentence, and are ErrCannotServe.
func TestCannotServe(t *testing.T) {
	gone := errors.New("job 1 no longer exists")
	err := fmt.Errorf("the kept reservation cannot be reused: %w", providers.CannotServe(gone))
	if want := "the kept reservation cannot be reused: job 1 no longer exists"; err.Error() != want {
		t.Errorf("%q, want %q", err, want)
	}
	if !errors.Is(err, providers.ErrCannotServe) || !errors.Is(err, gone) {
		t.Errorf("%v is not ErrCannotServe and its reason", err)
	}
	if err := providers.CannotServe(); err != nil {
		t.Errorf("no reason: %v", err)
	}
}
