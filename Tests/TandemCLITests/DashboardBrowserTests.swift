import Foundation
import TandemTestSupport
import Testing

/// The staff dashboard in a real headless Chromium (issue 16): `tandem admin seed-demo` fills
/// a new center, the real `tandem serve` serves it, a one-time code from `tandem admin
/// sign-in-code` signs in through the form (`scripts/dashboard-check`: Selenium with
/// Debian's chromium and chromium-driver, which `scripts/bootstrap` installs), a screenshot
/// is taken, and the page is checked: every chart with its table, suppressed figures
/// marked, no script, a phone-sized screen, a mentor's caseload chosen in the form; then no
/// patient's or supervisor's name or id is anywhere in the HTML, and mentors are named only
/// where a caseload is chosen and shown.
@Suite("Dashboard in a browser")
struct DashboardBrowserTests {
    /// Chromium is there, or required (`TANDEM_REQUIRE_BROWSER=1`, as `scripts/test` sets).
    static var browserAvailable: Bool {
        ProcessInfo.processInfo.environment["TANDEM_REQUIRE_BROWSER"] == "1"
            || (FileManager.default.isExecutableFile(atPath: "/usr/bin/chromium") && FileManager.default.isExecutableFile(atPath: "/usr/bin/chromedriver"))
    }

    struct MemberJSON: Decodable {
        var id: String
        var name: String
        var role: String
    }

    @Test(.enabled(if: browserAvailable, "Chromium and chromium-driver are not installed (scripts/bootstrap installs them)"))
    func aStaffMemberSignsIn_andSeesEveryChart_withNoPatientNamedAnywhere() async throws {
        let dir = try TemporaryDirectory("dashboard-browser")
        let db = dir.path("center.sqlite")
        #expect(try await TandemExecutable.run(["admin", "init", "--name", "Rae Staff", "--db", db]).status == 0)
        let seeded = try await TandemExecutable.run(["admin", "seed-demo", "--patients", "150", "--days", "70", "--seed", "3", "--db", db])
        #expect(seeded.status == 0, "\(seeded.combined)")
        // The server's log (and anything the sanitizer reports) is kept: a check that cannot
        // reach the server says why the server went away.
        let log = dir.path("server.log")
        let server = try await LiveServer(dbPath: db, logPath: log)
        defer { Task { await server.stop() } }
        let code = try await TandemExecutable.run(["admin", "sign-in-code", "--staff", "Rae Staff", "--db", db])
        #expect(code.status == 0, "\(code.combined)")
        let out = dir.path("browser")
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        let checked = try await Self.check(server.url, code.stdout.trimmingCharacters(in: .whitespacesAndNewlines), out)
        #expect(checked.status == 0, "scripts/dashboard-check: \(checked.output)\nserver log, last lines:\n\(Self.tail(of: log))")
        // A PNG was taken.
        let png = try Data(contentsOf: URL(fileURLWithPath: out + "/dashboard.png"))
        #expect(png.count > 10_000 && png.starts(with: [0x89, 0x50, 0x4E, 0x47]))
        // No one but the signed-in staff member is named, and no patient's or supervisor's
        // id is anywhere; mentors only in the caseload's choice (and the caseload shown).
        let members = try JSONDecoder().decode(
            [MemberJSON].self, from: Data(try await TandemExecutable.run(["admin", "members", "--json", "--db", db]).stdout.utf8))
        #expect(members.filter { $0.role == "patient" }.count == 150)
        #expect(members.contains { $0.role == "mentor" })
        for page in ["dashboard", "dashboard-caseload"] {
            let html = try String(contentsOfFile: out + "/\(page).html", encoding: .utf8)
            var outside = html
            if let select = html.range(of: #"(?s)<select id="caseload"[^>]*>.*?</select>"#, options: .regularExpression) {
                outside.removeSubrange(select)
            } else {
                Issue.record("\(page) has no caseload choice")
            }
            if let about = outside.range(of: #"(?s)<p class="about">.*?</p>"#, options: [.regularExpression]), page == "dashboard-caseload" {
                outside.removeSubrange(about)
            }
            for member in members where member.role != "staff" {
                #expect(!outside.contains(member.id), "\(page) holds the id of a \(member.role)")
                #expect(!outside.contains(member.name), "\(page) names a \(member.role)")
                // (A demo patient may share a first name with a mentor, "Sam (mentor)", in the choice.)
                if member.role != "mentor" { #expect(!html.contains(member.id), "\(page) holds the id of a \(member.role)") }
            }
            // And no free text: the demo's journal phrases are in none of it.
            for phrase in ["Rough night", "One day at a time", "Discussed coping plan"] { #expect(!html.contains(phrase)) }
        }
    }

    /// The last lines of a log file (no health content: the server logs none).
    static func tail(of path: String, lines: Int = 40) -> String {
        let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? "(no log)"
        return text.split(separator: "\n", omittingEmptySubsequences: false).suffix(lines).joined(separator: "\n")
    }

    static func check(_ url: String, _ code: String, _ out: String) async throws -> ScriptRun {
        try await ScriptRun.run(ScriptRun.script("dashboard-check"), [url, code, out])
    }
}
