package main

import (
	"os"
	"strings"
	"testing"

	"github.com/tayori-news/tayori/internal/config"
)

// TestREADMEDocumentsEveryVariable keeps the configuration table true.
func TestREADMEDocumentsEveryVariable(t *testing.T) {
	data, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range config.Vars {
		if !strings.Contains(string(data), "`"+v.Env+"`") {
			t.Errorf("README.md does not document %s", v.Env)
		}
	}
	if !strings.Contains(string(data), "make test") {
		t.Error("README.md does not show `make test`")
	}
}
