package browser

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/caddy-mlflow/caddy-mlflow/caddymodule/caddytest"
)

// solidPNG is a w×h PNG of one colour.
func solidPNG(t *testing.T, w, hgt int, c color.RGBA) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, hgt))
	for y := 0; y < hgt; y++ {
		for x := 0; x < w; x++ {
			img.Set(x, y, c)
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// stepImageName is the artifact path MlflowClient.log_image(key=, step=)
// writes: images/<key, "/" as "#">%step%<n>%timestamp%<ms>%<uuid>.png, and
// the same with %compressed.webp for the small copy.
func stepImageName(key string, step int, ts int64, id string, compressed bool) string {
	name := fmt.Sprintf("images/%s%%step%%%d%%timestamp%%%d%%%s", strings.ReplaceAll(key, "/", "#"), step, ts, id)
	if compressed {
		return name + "%compressed.webp"
	}
	return name + ".png"
}

// seedArtifact stores content at relPath in the run's artifacts: through
// the mlflow-artifacts API (the path percent-encoded once, as MLflow's
// client sends it) when the server takes the path, else straight into the
// artifact store's directory. It reports whether the API took it.
func seedArtifact(t *testing.T, srv *caddytest.Server, expID, runID, relPath string, content []byte) bool {
	t.Helper()
	esc := make([]string, 0, 4)
	for _, seg := range strings.Split(relPath, "/") {
		esc = append(esc, url.PathEscape(seg))
	}
	u := fmt.Sprintf("%s/api/2.0/mlflow-artifacts/artifacts/%s/%s/artifacts/%s", srv.URL, expID, runID, strings.Join(esc, "/"))
	req, err := http.NewRequest(http.MethodPut, u, bytes.NewReader(content))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		return true
	}
	t.Logf("PUT %s refused (%d %s); writing the file into the artifact store directly", relPath, resp.StatusCode, body)
	file := filepath.Join(srv.ArtifactsDir, expID, runID, "artifacts", filepath.FromSlash(relPath))
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, content, 0o644); err != nil {
		t.Fatal(err)
	}
	return false
}

// TestRunStepImages logs step images the way mlflow.log_image(key=,
// step=) names them and checks the run page's image grid: a card per key,
// a step slider that changes every card's image, the downloads encoding the
// "%" in the names once.
func TestRunStepImages(t *testing.T) {
	srv := caddytest.Start(t, caddytest.Options{})
	api := newREST(t, srv)
	exp := api.createExperiment("image-run")
	runID := api.createRun(exp, "gan-training", time.Now().Add(-time.Hour).UnixMilli())
	api.post("runs/set-tag", map[string]any{"run_id": runID, "key": "mlflow.loggedImages", "value": "True"})
	ts := time.Now().Add(-30 * time.Minute).UnixMilli()
	// Per step a distinct colour: red at 0, green at 5, blue at 12.
	colours := map[int]color.RGBA{0: {220, 20, 20, 255}, 5: {20, 200, 20, 255}, 12: {20, 20, 220, 255}}
	viaAPI := true
	for i, step := range []int{0, 5, 12} {
		stamp := ts + int64(i)*1000
		id := fmt.Sprintf("g%07d-1234-4abc-9def-0123456789ab", i)
		// "dog": the full image and its compressed copy.
		viaAPI = seedArtifact(t, srv, exp, runID, stepImageName("dog", step, stamp, id, false), solidPNG(t, 64, 48, colours[step])) && viaAPI
		viaAPI = seedArtifact(t, srv, exp, runID, stepImageName("dog", step, stamp, id, true), solidPNG(t, 32, 24, colours[step])) && viaAPI
		// "eval/masks" (a "/" in the key): only the full image, steps 0 and 12.
		if step != 5 {
			viaAPI = seedArtifact(t, srv, exp, runID, stepImageName("eval/masks", step, stamp, "h"+id[1:], false), solidPNG(t, 40, 40, colours[step])) && viaAPI
		}
	}
	// Not a step image: listed in the artifacts, not in the grid.
	seedArtifact(t, srv, exp, runID, "images/readme.txt", []byte("not an image"))

	p := newPage(t, srv.URL, desktopWidth, desktopHeight)
	p.open("/experiments/"+exp+"/runs/"+runID, "run")
	if n := p.count(`#run-tab-images`); n != 1 {
		t.Fatalf("run with mlflow.loggedImages has %d Images tabs", n)
	}
	p.click("#run-tab-images")
	p.run("image grid", chromedp.WaitVisible(chromedp.ID("image-grid")))
	p.wantLocationIs("/experiments/" + exp + "/runs/" + runID + "?tab=images")
	if n := p.count("#image-grid .image-card"); n != 2 {
		t.Fatalf("%d image cards, want 2 (dog, eval/masks)", n)
	}
	keys := value(p, "card keys", chromedp.Evaluate[[]string](`[...document.querySelectorAll('#image-grid .image-key')].map((e) => e.textContent)`))
	if strings.Join(keys, ",") != "dog,eval/masks" {
		t.Errorf("card keys %q", keys)
	}
	// The slider starts at the last step.
	p.wantText("#image-step-label", "Step 12")
	src := value(p, "dog src", chromedp.Evaluate[string](`document.querySelector('.image-card[data-key="dog"] img').getAttribute('src')`))
	want := "/get-artifact?run_uuid=" + runID + "&path=" + url.QueryEscape(stepImageName("dog", 12, ts+2000, "g0000002-1234-4abc-9def-0123456789ab", true))
	want = strings.ReplaceAll(want, "+", "%20")
	if src != want {
		t.Errorf("dog image src\n got %s\nwant %s", src, want)
	}
	if !strings.Contains(src, "%25step%25") {
		t.Errorf("the %% in the name is not sent as %%25: %s", src)
	}
	href := value(p, "dog link", chromedp.Evaluate[string](`document.querySelector('.image-card[data-key="dog"] a').getAttribute('href')`))
	if !strings.HasSuffix(href, ".png") {
		t.Errorf("the card links %s, want the full-size PNG", href)
	}

	// pixel samples the centre of a card's loaded image as "r,g,b".
	pixel := func(key string) string {
		js := fmt.Sprintf(`new Promise((resolve) => {
			const img = document.querySelector('.image-card[data-key=%q] img');
			const probe = () => {
				if (!img.complete || !img.naturalWidth) { setTimeout(probe, 50); return; }
				const c = document.createElement('canvas');
				c.width = img.naturalWidth; c.height = img.naturalHeight;
				const g = c.getContext('2d');
				g.drawImage(img, 0, 0);
				const d = g.getImageData(c.width >> 1, c.height >> 1, 1, 1).data;
				resolve(d[0] + ',' + d[1] + ',' + d[2]);
			};
			probe();
		})`, key)
		return value(p, "pixel of "+key, chromedp.Evaluate[string](js, chromedp.EvalAwaitPromise))
	}
	setStep := func(index int) {
		evalJS(p, "move the slider", fmt.Sprintf(`(() => { const s = document.getElementById('image-step'); s.value = '%d';
			s.dispatchEvent(new Event('input', {bubbles: true})); s.dispatchEvent(new Event('change', {bubbles: true})); return true; })()`, index))
	}
	if !viaAPI {
		t.Log("the server refused '%' in artifact paths: files were written to the store directly; image downloads are not checked")
	} else {
		if got := pixel("dog"); got != "20,20,220" {
			t.Errorf("dog at step 12 shows %s, want blue", got)
		}
		if got := pixel("eval/masks"); got != "20,20,220" {
			t.Errorf("eval/masks at step 12 shows %s, want blue", got)
		}
	}
	p.shot("run-images-step12")

	// Step 5 (index 1): dog turns green; eval/masks has no step 5 and keeps
	// its step 0 image (the last logged at or before step 5).
	setStep(1)
	p.wantText("#image-step-label", "Step 5")
	p.wantText(`.image-card[data-key="dog"] figcaption`, "Step 5")
	p.wantText(`.image-card[data-key="eval/masks"] figcaption`, "Step 0")
	if viaAPI {
		if got := pixel("dog"); got != "20,200,20" {
			t.Errorf("dog at step 5 shows %s, want green", got)
		}
		if got := pixel("eval/masks"); got != "220,20,20" {
			t.Errorf("eval/masks at step 5 shows %s, want red (step 0)", got)
		}
	}
	p.wantLocationHas("step=5")
	p.shot("run-images-step5")

	// The address keeps the step: a reload shows step 5 again.
	p.open(p.location(), "run")
	p.run("image grid again", chromedp.WaitVisible(chromedp.ID("image-grid")))
	p.wantText("#image-step-label", "Step 5")

	// A run without the tag has no Images tab; asking for it says there are none.
	plain := api.createRun(exp, "no-images", time.Now().UnixMilli())
	p.open("/experiments/"+exp+"/runs/"+plain, "run")
	if n := p.count(`#run-tab-images`); n != 0 {
		t.Errorf("a run without images has an Images tab")
	}
	p.open("/experiments/"+exp+"/runs/"+plain+"?tab=images", "run")
	p.wantText("main", "No step images logged for this run.")
}
