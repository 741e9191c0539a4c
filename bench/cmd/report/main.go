// Command report turns the JSON lines written by run.sh (loadgen and
// quic-client results, plus skip/failure notes) into markdown tables.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"slices"
	"strings"
)

type row struct {
	Label   string  `json:"label"`
	Size    int     `json:"size"`
	Window  int     `json:"window"`
	PPS     float64 `json:"pps"`
	Mbps    float64 `json:"mbps"`
	LossPct float64 `json:"loss_pct"`
	P50     float64 `json:"p50_us"`
	P99     float64 `json:"p99_us"`
	P999    float64 `json:"p999_us"`
	Samples int     `json:"rtt_samples"`
	Sent    uint64  `json:"sent"`
	Late    uint64  `json:"late"`
	Skipped string  `json:"skipped"`
	Error   string  `json:"error"`

	// quic-client
	Mode    string  `json:"mode"`
	Bytes   int64   `json:"bytes"`
	Seconds float64 `json:"seconds"`
	MBps    float64 `json:"mb_per_s"`
	HsMs    float64 `json:"handshake_ms"`
}

func main() {
	udp := flag.String("udp", "", "JSON lines from loadgen runs")
	quic := flag.String("quic", "", "JSON lines from quic-client runs")
	base := flag.String("baseline", "gvisor", "subject the ratios are relative to")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("report: ")
	if *udp != "" {
		udpTable(read(*udp), *base)
	}
	if *quic != "" {
		quicTable(read(*quic), *base)
	}
}

func read(path string) []row {
	f, err := os.Open(path)
	if err != nil {
		if os.IsNotExist(err) {
			return nil
		}
		log.Fatal(err)
	}
	defer f.Close()
	var rows []row
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] != '{' {
			continue
		}
		var r row
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			log.Printf("skipping bad line %q: %v", line, err)
			continue
		}
		rows = append(rows, r)
	}
	return rows
}

type key struct {
	mode         string
	size, window int
}

func keyOf(r row) key { return key{r.Mode, r.Size, r.Window} }

// ratio formats a/b, or nothing when b is missing.
func ratio(a float64, b row, ok bool) string {
	if !ok || b.PPS <= 0 {
		return ""
	}
	return fmt.Sprintf("%.2f", a/b.PPS)
}

func udpTable(rows []row, base string) {
	baseRow, floorRow, floor6Row, kernelRow := map[key]row{}, map[key]row{}, map[key]row{}, map[key]row{}
	for _, r := range rows {
		if r.Skipped != "" || r.Error != "" {
			continue
		}
		switch r.Label {
		case base:
			baseRow[keyOf(r)] = r
		case "floor":
			floorRow[keyOf(r)] = r
		case "floor6":
			floor6Row[keyOf(r)] = r
		case "kernel":
			kernelRow[keyOf(r)] = r
		}
	}
	fmt.Println("| subject | load | payload B | window | pps | Gbit/s | loss % | p50 µs | p99 µs | p999 µs | pps ÷ " + base + " | pps ÷ floor | pps ÷ kernel | p50 ÷ " + base + " |")
	fmt.Println("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	var notes []string
	for _, r := range rows {
		switch {
		case r.Skipped != "":
			notes = append(notes, fmt.Sprintf("- %s skipped: %s", r.Label, r.Skipped))
			continue
		case r.Error != "":
			fmt.Printf("| %s | %s | %d | %d | failed: %s | | | | | | | | | |\n", r.Label, r.Mode, r.Size, r.Window, r.Error)
			continue
		}
		p50Ratio := ""
		b, ok := baseRow[keyOf(r)]
		if ok && b.P50 > 0 && r.P50 > 0 {
			p50Ratio = fmt.Sprintf("%.2f", r.P50/b.P50)
		}
		f, fok := floorRow[keyOf(r)]
		if ipv6Subject(r.Label) && r.Label != "floor6" {
			// An IPv6 subject's ceiling is the IPv6 floor; floor6's own
			// row keeps the IPv4 floor, to show the kernel's IPv6 cost.
			f, fok = floor6Row[keyOf(r)]
		}
		k, kok := kernelRow[keyOf(r)]
		mode := r.Mode
		if mode == "" {
			mode = "plain"
		}
		fmt.Printf("| %s | %s | %d | %d | %.0f | %.2f | %s | %.1f | %.1f | %.1f | %s | %s | %s | %s |\n",
			r.Label, mode, r.Size, r.Window, r.PPS, r.Mbps/1000, lossStr(r), r.P50, r.P99, r.P999,
			ratio(r.PPS, b, ok), ratio(r.PPS, f, fok), ratio(r.PPS, k, kok), p50Ratio)
	}
	for _, n := range notes {
		fmt.Println(n)
	}
}

// ipv6Subject reports whether the subject is served over IPv6 (run.sh names
// those with a trailing 6).
func ipv6Subject(label string) bool { return strings.HasSuffix(label, "6") }

// lossStr renders the loss, and which part of it came back late (after the
// loss timeout: a stall, not a drop).
func lossStr(r row) string {
	if r.LossPct == 0 {
		return "0"
	}
	s := pctStr(r.LossPct)
	if r.Late > 0 && r.Sent > 0 {
		s += fmt.Sprintf(" (%s late)", pctStr(100*float64(r.Late)/float64(r.Sent)))
	}
	return s
}

func pctStr(p float64) string {
	if p < 0.01 {
		return fmt.Sprintf("%.4f", p)
	}
	return fmt.Sprintf("%.2f", p)
}

func quicTable(rows []row, base string) {
	type agg struct {
		label    string
		mode     string
		bytes    int64
		mbps, hs []float64
		errs     []string
		skipped  string
	}
	var order []string
	byLabel := map[string]*agg{}
	for _, r := range rows {
		a := byLabel[r.Label]
		if a == nil {
			a = &agg{label: r.Label}
			byLabel[r.Label] = a
			order = append(order, r.Label)
		}
		switch {
		case r.Skipped != "":
			a.skipped = r.Skipped
		case r.Error != "":
			a.errs = append(a.errs, r.Error)
		default:
			a.mode, a.bytes = r.Mode, r.Bytes
			a.mbps = append(a.mbps, r.MBps)
			a.hs = append(a.hs, r.HsMs)
		}
	}
	var baseMed float64
	if b := byLabel[base]; b != nil && len(b.mbps) > 0 {
		baseMed = median(b.mbps)
	}
	fmt.Println()
	fmt.Println("| quic server | mode | MiB | runs ok | median MB/s | best MB/s | worst MB/s | median handshake ms | median ÷ " + base + " |")
	fmt.Println("|---|---|---:|---:|---:|---:|---:|---:|---:|")
	var notes []string
	for _, l := range order {
		a := byLabel[l]
		if a.skipped != "" {
			notes = append(notes, fmt.Sprintf("- %s skipped: %s", l, a.skipped))
			continue
		}
		for _, e := range a.errs {
			notes = append(notes, fmt.Sprintf("- %s failed: %s", l, e))
		}
		runs := len(a.mbps) + len(a.errs)
		if len(a.mbps) == 0 {
			fmt.Printf("| %s | | | 0 of %d | failed | | | | |\n", l, runs)
			continue
		}
		ratio := ""
		if baseMed > 0 {
			ratio = fmt.Sprintf("%.2f", median(a.mbps)/baseMed)
		}
		fmt.Printf("| %s | %s | %d | %d of %d | %.1f | %.1f | %.1f | %.1f | %s |\n", l, a.mode, a.bytes>>20,
			len(a.mbps), runs, median(a.mbps), slices.Max(a.mbps), slices.Min(a.mbps), median(a.hs), ratio)
	}
	for _, n := range notes {
		fmt.Println(n)
	}
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}
