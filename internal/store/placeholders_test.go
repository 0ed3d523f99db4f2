package store_test

import (
	"fmt"
	"slices"
	"testing"

	"github.com/llmgate/llmgate/internal/store"
)

// An expression's placeholders are #n<i> and :v<i>, one per attribute name (a name used twice
// keeps its own) and per value, past the ones made in advance too.
func TestPlaceholders(t *testing.T) {
	var attrs, wantNames, wantValues []string
	for i := range 100 {
		attrs = append(attrs, fmt.Sprintf("a%d", i))
		wantNames, wantValues = append(wantNames, fmt.Sprintf("#n%d", i)), append(wantValues, fmt.Sprintf(":v%d", i))
	}
	names, values := store.Placeholders(append(attrs, attrs[70], attrs[3]), 100)
	if want := append(wantNames, "#n70", "#n3"); !slices.Equal(names, want) {
		t.Errorf("names %v, want %v", names, want)
	}
	if !slices.Equal(values, wantValues) {
		t.Errorf("values %v, want %v", values, wantValues)
	}
}
