package chaos

import (
	"bufio"
	"encoding/csv"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"

	"github.com/tayori-news/tayori/audience"
)

// readerAddr is reader i's address.
func readerAddr(i int) string { return fmt.Sprintf("r%05d@chaos.example.jp", i) }

// writeReaders writes n readers to path as the CSV `tayori subscribers
// import` reads: each active (with consent), with a random non-empty set
// of regions and of standard topics, so that the readers fall into many
// variants of the issue and some get nothing from it.
func writeReaders(path string, n int, seed uint64) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	bw := bufio.NewWriter(f)
	w := csv.NewWriter(bw)
	rng := rand.New(rand.NewPCG(seed, 0xc5f))
	_ = w.Write([]string{"email", "name", "regions", "topics", "consent_at", "consent_method", "consent_version"})
	for i := 1; i <= n; i++ {
		var regions, topics []string
		for _, r := range audience.Regions {
			if rng.Float64() < 0.35 {
				regions = append(regions, string(r))
			}
		}
		if len(regions) == 0 {
			regions = append(regions, string(audience.Regions[rng.IntN(len(audience.Regions))]))
		}
		for _, t := range audience.StandardTopics {
			if rng.Float64() < 0.4 {
				topics = append(topics, string(t))
			}
		}
		if len(topics) == 0 {
			topics = append(topics, string(audience.StandardTopics[rng.IntN(len(audience.StandardTopics))]))
		}
		_ = w.Write([]string{readerAddr(i), fmt.Sprintf("読者 %05d", i), strings.Join(regions, ","),
			strings.Join(topics, ","), "2025-10-01", "import", "chaos"})
	}
	w.Flush()
	if err := w.Error(); err != nil {
		return err
	}
	return bw.Flush()
}
