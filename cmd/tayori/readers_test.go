package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tayori-news/tayori/internal/testutil"
)

// nothingMD is an issue whose US and EU sections have nothing this month.
const nothingMD = `---
newsletter: AI政策動向マンスリー情報
slug: 2025-12
title: AI政策動向マンスリー情報 2025年12月号
period: 12月1日〜12月31日
---

## 国内AI政策動向(12月1日〜12月31日) {region=jp kind=policy}

### (2025/12/03) 内閣府、AI基本計画案を公表

- https://www8.cao.go.jp/cstp/ai/index.html

## 【米国】(12月1日～12月31日) {region=us kind=policy group="海外主要国のAI政策動向"}

該当なし

## 【欧州】(12月1日~12月31日) {region=eu kind=policy group="海外主要国のAI政策動向"}

該当なし
`

// Issue 22: the dry run counts apart the readers whose chosen sections
// all have nothing this month, and `subscribers lists nothing-month`
// switches a list between sending them the short copy and skipping them.
func TestDryRunCountsNothingMonthReaders(t *testing.T) {
	smtp := testutil.StartSMTP(t)
	getenv := sendTestEnv(t, smtp) // readers of jp, us and eu, every topic
	issue := filepath.Join(t.TempDir(), "2025-12.md")
	if err := os.WriteFile(issue, []byte(nothingMD), 0o600); err != nil {
		t.Fatal(err)
	}
	out, stderr, err := runCLI(t, getenv, "send", issue, "--dry-run")
	if err != nil {
		t.Fatalf("dry run: %v\n%s", err, stderr)
	}
	if !strings.Contains(out, "1 reader in 1 variant; 2 readers get a short copy") || !strings.Contains(out, "0 readers skipped") ||
		!strings.Contains(out, "(all 該当なし: short copy)") {
		t.Errorf("dry run:\n%s", out)
	}
	if out, _, err := runCLI(t, getenv, "subscribers", "lists", "nothing-month", "monthly", "skip"); err != nil || !strings.Contains(out, "skip") {
		t.Fatalf("nothing-month skip: %v %s", err, out)
	}
	out, _, err = runCLI(t, getenv, "send", issue, "--dry-run")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "1 reader in 1 variant; 0 readers get a short copy") || !strings.Contains(out, "2 readers skipped by the list's setting") {
		t.Errorf("dry run of a skipping list:\n%s", out)
	}
	if _, _, err := runCLI(t, getenv, "subscribers", "lists", "nothing-month", "monthly", "maybe"); err == nil || !strings.Contains(err.Error(), "send or skip") {
		t.Errorf("bad setting: %v", err)
	}
	if _, _, err := runCLI(t, getenv, "subscribers", "lists", "nothing-month", "nosuch", "skip"); err == nil {
		t.Error("unknown list accepted")
	}
}
