import Mustache

/// The dashboard's pages (swift-mustache) and style sheet. `{{ }}` escapes HTML; only the
/// charts, which `DashboardCharts` writes with every text escaped, go in with `{{{ }}}`.
enum DashboardTemplates {
    static let library: MustacheLibrary = {
        var library = MustacheLibrary()
        // The templates are constants of this file: a mistake in one is a bug found by the
        // dashboard's tests, so a page that fails to parse is left out and answers 500.
        try? library.register(layout(signIn), named: "sign-in")
        try? library.register(layout(page), named: "page")
        return library
    }()

    static func layout(_ body: String) -> String {
        """
        <!DOCTYPE html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <meta name="referrer" content="no-referrer">
        <title>{{title}} · Tandem</title>
        <link rel="stylesheet" href="/dashboard/style.css">
        </head>
        <body>
        \(body)
        </body>
        </html>
        """
    }

    static let signIn = """
        <main class="narrow">
        <h1>Tandem: the center's outcomes</h1>
        <p>For the center's staff. Sign in with the password set for you on the server's host
        (<code>tandem admin set-password</code>), or a one-time code printed there
        (<code>tandem admin sign-in-code</code>).</p>
        {{#message}}<p class="alert" role="alert">{{message}}</p>{{/message}}
        <form method="post" action="/dashboard/sign-in">
        <input type="hidden" name="csrf" value="{{csrf}}">
        <p><label for="name">Your name</label><br><input id="name" name="name" autocomplete="username" maxlength="200"></p>
        <p><label for="password">Password</label><br><input id="password" name="password" type="password" autocomplete="current-password" maxlength="200"></p>
        <p><label for="code">Or a one-time sign-in code</label><br><input id="code" name="code" autocomplete="one-time-code" maxlength="64"></p>
        <p><button type="submit">Sign in</button></p>
        </form>
        </main>
        """

    static let page = """
        <header>
        <h1>The center's outcomes</h1>
        <p class="who">Signed in as {{staff}}.</p>
        <form method="post" action="/dashboard/sign-out" class="inline">
        <input type="hidden" name="csrf" value="{{csrf}}"><button type="submit">Sign out</button>
        </form>
        </header>
        <main>
        <form method="get" action="/dashboard" class="filters">
        <p><label for="from">From</label><br><input id="from" name="from" type="date" value="{{from}}"></p>
        <p><label for="to">To</label><br><input id="to" name="to" type="date" value="{{to}}"></p>
        <p><label for="cohort">Cohort (month of enrollment)</label><br><input id="cohort" name="cohort" type="month" value="{{cohort}}"></p>
        <p><label for="caseload">Mentor's caseload</label><br><select id="caseload" name="caseload"><option value="">All patients</option>{{#caseloads}}<option value="{{value}}"{{#selected}} selected{{/selected}}>{{label}}</option>{{/caseloads}}</select></p>
        <p><button type="submit">Show</button></p>
        </form>
        {{#message}}<p class="alert" role="alert">{{message}}</p>{{/message}}
        <p class="about">Weeks {{from}} to {{to}}, {{population}}. De-identified: only patients who consent to be
        counted; a figure that would describe fewer than {{minimumCell}} patients, or could be worked out from
        others that would, is marked <span class="suppressed">suppressed</span>. Patient counts are rounded to
        {{roundedTo}}.</p>
        {{#sections}}
        <section class="figure" id="{{id}}">
        <h2>{{heading}}</h2>
        <p>{{explanation}}</p>
        <div class="chart-box">{{{svg}}}</div>
        <div class="table-box">
        <table>
        <caption>{{heading}}: the figures</caption>
        <thead><tr>{{#columns}}<th scope="col">{{.}}</th>{{/columns}}</tr></thead>
        <tbody>
        {{#rows}}<tr><th scope="row">{{label}}</th>{{#cells}}<td{{#suppressed}} class="suppressed"{{/suppressed}}>{{text}}</td>{{/cells}}</tr>
        {{/rows}}
        </tbody>
        </table>
        </div>
        </section>
        {{/sections}}
        </main>
        """

    static let style = """
        :root { color-scheme: light; }
        body { font: 16px/1.5 system-ui, sans-serif; color: #111; background: #fff; margin: 0; padding: 0 1rem 2rem; }
        header, main { max-width: 60rem; margin: 0 auto; }
        main.narrow { max-width: 26rem; }
        h1 { font-size: 1.5rem; margin: 1rem 0 0.25rem; }
        h2 { font-size: 1.15rem; margin: 2rem 0 0.25rem; }
        .who { margin: 0; color: #333; }
        form.inline { display: inline; }
        .filters { display: flex; flex-wrap: wrap; gap: 0 1rem; align-items: flex-end; }
        input, select, button { font: inherit; padding: 0.3rem 0.5rem; border: 1px solid #555; border-radius: 4px; }
        button { background: #0b4f8a; color: #fff; border-color: #0b4f8a; cursor: pointer; }
        label { font-weight: 600; }
        .alert { background: #fff1f0; border: 1px solid #a8071a; color: #5c0011; padding: 0.5rem 0.75rem; }
        .chart-box svg { width: 100%; height: auto; max-width: 40rem; }
        .table-box { overflow-x: auto; }
        table { border-collapse: collapse; margin: 0.5rem 0; font-size: 0.9rem; }
        caption { text-align: left; font-weight: 600; padding: 0.25rem 0; }
        th, td { border: 1px solid #999; padding: 0.2rem 0.5rem; text-align: right; white-space: nowrap; }
        th[scope=row] { text-align: left; }
        .suppressed { background: #eee; color: #333; font-style: italic; }
        code { background: #f3f3f3; padding: 0 0.2rem; }
        """
}
