package mosparoemu

import (
	"bytes"
	"fmt"
	"strings"
)

// Fixed response bodies. They are never modified after package initialization, which is what
// lets handlers pass them to SetBodyRaw.
var (
	pageNotFound         = errorPage("404", "Page not found", "The requested page could not be found.")
	pageMethodNotAllowed = errorPage("405", "Method Not Allowed", "The request method is not supported for the requested resource.")
	pageError500         = []byte(`<!DOCTYPE html>
<html>
    <head>
        <meta charset="UTF-8" />
        <meta name="robots" content="noindex,nofollow" />
        <title>500 Internal Server Error</title>
    </head>
    <body>
        <h1>Internal Server Error</h1>
        <p>The emulated mosparo node failed to handle this request (HTTP 500).</p>
    </body>
</html>
`)
	pageRedirect = []byte(`<!DOCTYPE html>
<html>
    <head><meta charset="UTF-8" /><title>Redirecting</title></head>
    <body>Redirecting&hellip;</body>
</html>`)
	jsonNotFound         = []byte(`{"error":true,"errorMessage":"Not Found"}`)
	jsonMethodNotAllowed = []byte(`{"error":true,"errorMessage":"Method Not Allowed"}`)
	pageLogin            = loginPage()
	robotsTxt            = []byte("User-agent: *\nDisallow: /\n")
	faviconICO           = favicon()
	frontendJS           = frontendScript()
	frontendCSS          = []byte(strings.TrimSpace(string(DefaultCSS("container"))))
)

func errorPage(code, title, text string) []byte {
	return []byte(`<!DOCTYPE html>
<html lang="en">
    <head>
        <meta charset="UTF-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>` + title + ` - mosparo</title>
        <link rel="stylesheet" href="/build/mosparo.css">
    </head>
    <body class="error-page">
        <div class="error-container">
            <div class="error-code">` + code + `</div>
            <h1>` + title + `</h1>
            <p>` + text + `</p>
            <a href="/" class="btn btn-primary">Back to the start page</a>
        </div>
    </body>
</html>
`)
}

// loginPage builds the /login page: about 2 KiB of HTML, the "small page" of the benchmark.
func loginPage() []byte {
	var b bytes.Buffer
	b.WriteString(`<!DOCTYPE html>
<html lang="en">
    <head>
        <meta charset="UTF-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <meta name="robots" content="noindex, nofollow">
        <title>Login - mosparo</title>
        <link rel="icon" href="/favicon.ico">
        <link rel="stylesheet" href="/build/mosparo.css">
        <script src="/build/runtime.js" defer></script>
        <script src="/build/mosparo.js" defer></script>
    </head>
    <body class="login-page">
        <div class="page page-center">
            <div class="container container-tight py-4">
                <div class="text-center mb-4"><img src="/build/images/mosparo-logo.svg" height="36" alt="mosparo"></div>
                <form class="card card-md" action="/login" method="post" autocomplete="off">
                    <div class="card-body">
                        <h2 class="card-title text-center mb-4">Login to your account</h2>
                        <div class="mb-3">
                            <label class="form-label" for="inputEmail">Email address</label>
                            <input type="email" name="_username" id="inputEmail" class="form-control" autocomplete="email" required autofocus>
                        </div>
                        <div class="mb-2">
                            <label class="form-label" for="inputPassword">Password</label>
                            <input type="password" name="_password" id="inputPassword" class="form-control" autocomplete="current-password" required>
                        </div>
                        <input type="hidden" name="_csrf_token" value="`)
	b.WriteString(strings.Repeat("a1b2c3d4", 8))
	b.WriteString(`">
                        <div class="form-footer">
                            <button type="submit" class="btn btn-primary w-100">Sign in</button>
                        </div>
                    </div>
                </form>
                <div class="text-center text-muted mt-3"><a href="/password" tabindex="-1">Forgot password?</a></div>
            </div>
        </div>
    </body>
</html>
`)
	return b.Bytes()
}

// DefaultCSS returns the deterministic prepared CSS of a project: about 12 KiB on one line,
// starting with `.mosparo__<uuid>` like mosparo's generated CSS (FACTS 5.2).
func DefaultCSS(uuid string) []byte {
	sel := ".mosparo__" + uuid
	parts := []string{
		"{--mosparo-border-color:rgb(0,0,0);--mosparo-border-radius:11px;--mosparo-border-width:3px;--mosparo-padding-top:20px;--mosparo-padding-left:30px;--mosparo-background-color:rgb(255,255,255);--mosparo-text-color:rgb(0,0,0);display:flex;flex-direction:column;max-width:320px}",
		" .mosparo__row{display:flex;flex-direction:row;align-items:center;padding:var(--mosparo-padding-top) var(--mosparo-padding-left)}",
		" .mosparo__checkbox-column{flex:0 0 40px;position:relative}",
		" .mosparo__checkbox{width:30px;height:30px;border:3px solid var(--mosparo-border-color);border-radius:50%;cursor:pointer}",
		" .mosparo__content-column{flex:1;padding-left:13px;font-size:14px;line-height:1.4}",
		" .mosparo__logo-column{background:url(/resources/logo.svg) no-repeat center;width:80px;height:20px}",
		".mosparo__invalid .mosparo__checkbox{border-color:rgb(255,0,0)}",
		".mosparo__valid .mosparo__checkbox{border-color:rgb(0,128,0)}",
		" .mosparo__error-message{color:rgb(255,0,0);font-size:11px;padding:11px 13px}",
	}
	var b bytes.Buffer
	for i := 0; b.Len() < 12*1024; i++ {
		p := parts[i%len(parts)]
		if i >= len(parts) {
			fmt.Fprintf(&b, "%s .mosparo__variant-%d%s", sel, i, p[strings.IndexByte(p, '{'):])
			continue
		}
		b.WriteString(sel)
		b.WriteString(p)
	}
	return b.Bytes()
}

// frontendScript is a stand-in for /build/mosparo-frontend.js: deterministic, about 32 KiB.
func frontendScript() []byte {
	var b bytes.Buffer
	b.WriteString("/*! mosparo frontend (emulated by mosparoemu) */\n")
	b.WriteString("(()=>{\"use strict\";function mosparo(containerId,url,uuid,publicKey,options){this.containerId=containerId;this.url=url;this.uuid=uuid;this.publicKey=publicKey;this.options=options||{}}")
	for i := 0; b.Len() < 32*1024; i++ {
		fmt.Fprintf(&b, "mosparo.prototype.f%d=function(a,b){var c=new XMLHttpRequest;c.open(\"POST\",this.url+\"/api/v1/frontend/request-submit-token\",!0);c.setRequestHeader(\"Content-Type\",\"application/x-www-form-urlencoded\");return a+b+%d};\n", i, i)
	}
	b.WriteString("window.mosparo=mosparo})();\n")
	return b.Bytes()
}

// favicon is a valid 1x1 32-bit ICO.
func favicon() []byte {
	ico := []byte{
		0, 0, 1, 0, 1, 0, // reserved, type icon, one image
		1, 1, 0, 0, 1, 0, 32, 0, // 1x1, no palette, 1 plane, 32 bpp
		48, 0, 0, 0, 22, 0, 0, 0, // 48 bytes at offset 22
		40, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 1, 0, 32, 0, // BITMAPINFOHEADER: 1x(2*1), 1 plane, 32 bpp
		0, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
		0x3c, 0x8d, 0x2f, 0xff, // one BGRA pixel
		0, 0, 0, 0, // AND mask row, padded to 4 bytes
	}
	return ico
}
