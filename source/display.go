package source

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/term"

	"github.com/source-klaviyo/source-klaviyo/source/emit"
)

// displayRefresh is how often the live display is redrawn.
const displayRefresh = 500 * time.Millisecond

// maxDisplayLines bounds the live display: the streams running longest are shown, the rest counted.
const maxDisplayLines = 12

// liveDisplay redraws, in place, one line per running stream on a terminal: a person watching a sync in a shell
// sees it move. It is used only when stderr is a terminal and stdout carries the protocol (Airbyte), so it never
// mixes with the Singer log lines Meltano reads from stderr.
type liveDisplay struct {
	mu    sync.Mutex
	w     io.Writer
	lines int // lines drawn last time, to move back over
}

// newLiveDisplay returns a display on w when w is a terminal, else nil. A character device is not enough: stderr
// sent to /dev/null is one, and drawing there twice a second is CPU spent for no one.
func newLiveDisplay(w io.Writer) *liveDisplay {
	f, ok := w.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return nil
	}
	return &liveDisplay{w: w}
}

// draw replaces the previous drawing with the current snapshots.
func (d *liveDisplay) draw(ps []emit.Progress) {
	d.mu.Lock()
	defer d.mu.Unlock()
	var b strings.Builder
	d.erase(&b)
	shown := ps
	if len(shown) > maxDisplayLines {
		shown = shown[:maxDisplayLines]
	}
	for _, p := range shown {
		b.WriteString(p.Text())
		b.WriteString("\n")
	}
	if more := len(ps) - len(shown); more > 0 {
		fmt.Fprintf(&b, "... and %d more streams\n", more)
		d.lines = len(shown) + 1
	} else {
		d.lines = len(shown)
	}
	_, _ = io.WriteString(d.w, b.String())
}

// clear removes the drawing, so what follows starts on a clean line.
func (d *liveDisplay) clear() {
	d.mu.Lock()
	defer d.mu.Unlock()
	var b strings.Builder
	d.erase(&b)
	d.lines = 0
	_, _ = io.WriteString(d.w, b.String())
}

// erase moves back over the last drawing, clearing each line (ANSI: cursor up, erase line).
func (d *liveDisplay) erase(b *strings.Builder) {
	for i := 0; i < d.lines; i++ {
		b.WriteString("\x1b[1A\x1b[2K")
	}
}
