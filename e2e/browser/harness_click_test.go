package browser

import (
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/caddy-mlflow/caddy-mlflow/caddymodule/caddytest"
)

// TestClickReachesCoveredButton checks the harness's click: a button that
// something covers for a moment (as a notification does) gets the click
// once it is uncovered, instead of the cover taking it; and a button
// under the sticky top bar is scrolled clear of it first.
func TestClickReachesCoveredButton(t *testing.T) {
	srv := caddytest.Start(t, caddytest.Options{})
	p := newPage(t, srv.URL, desktopWidth, desktopHeight)
	p.open("/experiments", "experiments")
	create := ".page-head .actions .btn-primary"

	// A fixed box over the button's centre, gone after 700 ms.
	value(p, "cover", chromedp.Evaluate[bool](`(() => {
		const b = document.querySelector('.page-head .actions .btn-primary').getBoundingClientRect();
		const c = document.createElement('div');
		c.id = 'cover';
		Object.assign(c.style, {position: 'fixed', zIndex: 100, background: 'rgba(0,0,0,.3)',
			left: (b.left - 10) + 'px', top: (b.top - 10) + 'px', width: (b.width + 20) + 'px', height: (b.height + 20) + 'px'});
		c.addEventListener('click', () => { document.body.dataset.coverClicked = 'yes'; });
		document.body.appendChild(c);
		setTimeout(() => c.remove(), 700);
		return true; })()`))
	p.click(create)
	p.run("the create dialog", chromedp.WaitVisible(chromedp.CSS("dialog.modal[open] #dlg-name")))
	wantJS(p, "clicks the cover took", `document.body.dataset.coverClicked || ''`, "")
	p.click("dialog.modal[open] .dialog-actions .btn:not(.btn-primary)")
	p.run("dialog closed", chromedp.WaitNotPresent(chromedp.CSS("dialog.modal")))

	// The button just under the top bar: scrolled into the open first.
	covered := value(p, "scroll under the top bar", chromedp.Evaluate[bool](`(() => {
		document.body.style.minHeight = '3000px';
		const bar = document.querySelector('.topbar').getBoundingClientRect();
		const b = document.querySelector('.page-head .actions .btn-primary');
		window.scrollBy(0, b.getBoundingClientRect().top + b.getBoundingClientRect().height / 2 - bar.height / 2);
		const r = b.getBoundingClientRect(), hit = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
		return !b.contains(hit); })()`))
	if !covered {
		t.Fatal("setup: the top bar does not cover the button")
	}
	p.click(create)
	p.run("the create dialog again", chromedp.WaitVisible(chromedp.CSS("dialog.modal[open] #dlg-name")))
}
