import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import TandemClient
import TandemCore
import TandemProtocol
@testable import TandemServer
import TandemStore
import TandemTestSupport
import Testing

/// Who reaches the staff dashboard, on every store (issue 16, PROTOCOL.md §9.20): a staff
/// member with their password or a one-time code; nobody without a session, with a
/// forged, expired (30 idle minutes, at the server's injected clock) or revoked one; no
/// form without its CSRF token; no patient or mentor; and failed sign-ins are throttled.
@Suite("Dashboard access")
struct DashboardAccessTests {
    static let password = "correct horse battery"
    /// A client that shows redirects instead of following them (the sign-in answers 303).
    static let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: .init(redirectConfiguration: .disallow))

    struct Answer {
        var status: Int
        var body: String
        var cookies: [String: String]
        /// Each Set-Cookie header whole, by cookie name: its attributes.
        var cookieHeaders: [String: String] = [:]
        var location: String?
    }

    struct Center {
        let dir: TemporaryDirectory
        let server: InProcessServer
        let clock: ManualWallClock
        let rae: MemberID

        init(_ storeKind: ServerStoreKind, limits: SyncServer.Limits = .init()) async throws {
            dir = try TemporaryDirectory("dashboard-access")
            let storage = try await storeKind.create(in: dir)
            let now = SystemWallClock().nowMillis()
            rae = try await storage.initialize(staffName: "Rae", nowMillis: now).member
            clock = ManualWallClock(millis: now)
            server = try await InProcessServer(storage: storage, limits: limits, wallClock: clock)
            try await storage.setDashboardPassword(try await StaffPassword.hash(DashboardAccessTests.password), of: rae, nowMillis: now)
        }

        func send(
            _ method: HTTPMethod, _ path: String, cookies: [String: String] = [:], form: [String: String]? = nil, headers: [String: String] = [:]
        ) async throws -> Answer {
            var request = HTTPClientRequest(url: server.url + path)
            request.method = method
            for (name, value) in headers { request.headers.add(name: name, value: value) }
            if !cookies.isEmpty { request.headers.add(name: "Cookie", value: cookies.map { "\($0.key)=\($0.value)" }.joined(separator: "; ")) }
            if let form {
                request.headers.add(name: "Content-Type", value: "application/x-www-form-urlencoded")
                let body = form.map { key, value in
                    "\(key)=\(value.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "")"
                }.joined(separator: "&")
                request.body = .bytes(ByteBuffer(string: body))
            }
            let response = try await DashboardAccessTests.client.execute(request, timeout: .seconds(30))
            var set: [String: String] = [:]
            var headers: [String: String] = [:]
            for header in response.headers["Set-Cookie"] {
                let pair = header.split(separator: ";")[0].split(separator: "=", maxSplits: 1)
                set[String(pair[0])] = pair.count > 1 ? String(pair[1]) : ""
                headers[String(pair[0])] = header
            }
            let body = try await response.body.collect(upTo: 4 << 20)
            return Answer(
                status: Int(response.status.code), body: String(buffer: body), cookies: set, cookieHeaders: headers,
                location: response.headers.first(name: "Location"))
        }

        /// The sign-in page's CSRF token and the cookie that goes with it.
        func signInForm() async throws -> (csrf: String, cookie: String) {
            let page = try await send(.GET, "/dashboard")
            let cookie = try #require(page.cookies[SyncServer.signInCookie])
            let csrf = try #require(page.body.firstMatch(of: /name="csrf" value="([0-9a-f]+)"/)?.1)
            return (String(csrf), cookie)
        }

        /// Signs in with `fields`; the answer.
        func signIn(_ fields: [String: String]) async throws -> Answer {
            let (csrf, cookie) = try await signInForm()
            return try await send(.POST, "/dashboard/sign-in", cookies: [SyncServer.signInCookie: cookie], form: fields.merging(["csrf": csrf]) { a, _ in a })
        }

        func isDashboard(_ answer: Answer) -> Bool { answer.status == 200 && answer.body.contains("/dashboard/sign-out") && answer.body.contains("<svg") }
    }

    @Test(arguments: ServerStoreKind.allCases)
    func aStaffMemberSignsIn_andIdleSessionsEnd(storeKind: ServerStoreKind) async throws {
        let center = try await Center(storeKind)
        let server = center.server
        defer { Task { await server.stop() } }
        // Nothing without a session, nor with a made-up one: the sign-in page, no figure.
        let anonymous = try await center.send(.GET, "/dashboard")
        #expect(anonymous.status == 200 && anonymous.body.contains("/dashboard/sign-in") && !anonymous.body.contains("<svg"))
        let forged = try await center.send(.GET, "/dashboard", cookies: [SyncServer.sessionCookie: String(repeating: "ab", count: 32)])
        #expect(!center.isDashboard(forged))
        // The password signs in: a session cookie, then the dashboard.
        let signedIn = try await center.signIn(["name": "rae", "password": Self.password])
        #expect(signedIn.status == 303 && signedIn.location == "/dashboard", "\(signedIn.status) \(signedIn.body.firstMatch(of: /role="alert">([^<]*)/)?.1 ?? "")")
        let session = try #require(signedIn.cookies[SyncServer.sessionCookie])
        // The cookie: script cannot read it, no other site's request carries it, only the
        // dashboard's paths do; not Secure here (plain HTTP, no trusted proxy saying HTTPS).
        let attributes = Set((signedIn.cookieHeaders[SyncServer.sessionCookie] ?? "").split(separator: ";").dropFirst().map {
            $0.trimmingCharacters(in: .whitespaces)
        })
        #expect(attributes == ["HttpOnly", "SameSite=Strict", "Path=/dashboard"], "\(attributes)")
        #expect(session.count == 64)
        #expect(center.isDashboard(try await center.send(.GET, "/dashboard", cookies: [SyncServer.sessionCookie: session])))
        // 29 idle minutes: still in, and the clock starts again; 31 more: out.
        center.clock.advance(byMillis: 29 * 60_000)
        #expect(center.isDashboard(try await center.send(.GET, "/dashboard", cookies: [SyncServer.sessionCookie: session])))
        center.clock.advance(byMillis: 31 * 60_000)
        #expect(!center.isDashboard(try await center.send(.GET, "/dashboard", cookies: [SyncServer.sessionCookie: session])))
        // A one-time code signs in once.
        let code = Secrets.newCode()
        try await center.server.storage.addSignInCode(Secrets.hashCode(code), for: center.rae, nowMillis: center.clock.nowMillis(), expiresMillis: center.clock.nowMillis() + 60_000)
        #expect(try await center.signIn(["code": code]).status == 303)
        #expect(try await center.signIn(["code": code]).status == 401)
        // Revoking the member ends their session.
        let again = try #require(try await center.signIn(["name": "Rae", "password": Self.password]).cookies[SyncServer.sessionCookie])
        _ = try await center.server.storage.revokeMember(center.rae)
        #expect(!center.isDashboard(try await center.send(.GET, "/dashboard", cookies: [SyncServer.sessionCookie: again])))
    }

    @Test func behindTheTrustedProxyOverHTTPS_theSessionCookieIsSecure() async throws {
        var limits = SyncServer.Limits()
        limits.trustedProxy = "127.0.0.1"
        let center = try await Center(.sqlite, limits: limits)
        let server = center.server
        defer { Task { await server.stop() } }
        let proxied = ["X-Forwarded-For": "192.0.2.7", "X-Forwarded-Proto": "https"]
        let form = try await center.send(.GET, "/dashboard", headers: proxied)
        let csrf = try #require(form.body.firstMatch(of: /name="csrf" value="([0-9a-f]+)"/)?.1)
        let signedIn = try await center.send(
            .POST, "/dashboard/sign-in", cookies: [SyncServer.signInCookie: try #require(form.cookies[SyncServer.signInCookie])],
            form: ["csrf": String(csrf), "name": "Rae", "password": Self.password], headers: proxied)
        #expect(signedIn.status == 303)
        #expect(signedIn.cookieHeaders[SyncServer.sessionCookie]?.contains("; Secure") == true, "\(signedIn.cookieHeaders)")
        // The same header from anyone but the trusted proxy counts for nothing.
        var direct = SyncServer.Limits()
        direct.trustedProxy = "192.0.2.1"
        let other = try await Center(.sqlite, limits: direct)
        let otherServer = other.server
        defer { Task { await otherServer.stop() } }
        #expect(try await other.send(.GET, "/dashboard", headers: proxied).cookieHeaders[SyncServer.signInCookie]?.contains("Secure") == false)
    }

    @Test(arguments: ServerStoreKind.allCases)
    func formsWithoutTheirCSRFToken_areRefused_andChangeNothing(storeKind: ServerStoreKind) async throws {
        let center = try await Center(storeKind)
        let server = center.server
        defer { Task { await server.stop() } }
        // A sign-in whose token is not its cookie's (another site's form): no session.
        let (csrf, cookie) = try await center.signInForm()
        for (cookies, token) in [([String: String](), csrf), ([SyncServer.signInCookie: cookie], String(repeating: "0", count: 64))] {
            let answer = try await center.send(.POST, "/dashboard/sign-in", cookies: cookies, form: ["csrf": token, "name": "Rae", "password": Self.password])
            #expect(answer.status == 403 && answer.cookies[SyncServer.sessionCookie] == nil)
        }
        // A sign-out without the session's token leaves the session open.
        let session = try #require(try await center.signIn(["name": "Rae", "password": Self.password]).cookies[SyncServer.sessionCookie])
        let forged = try await center.send(.POST, "/dashboard/sign-out", cookies: [SyncServer.sessionCookie: session], form: ["csrf": csrf])
        #expect(forged.status == 403)
        let page = try await center.send(.GET, "/dashboard", cookies: [SyncServer.sessionCookie: session])
        #expect(center.isDashboard(page))
        // With it, the session ends.
        let token = try #require(page.body.firstMatch(of: /name="csrf" value="([0-9a-f]+)"/)?.1)
        #expect(try await center.send(.POST, "/dashboard/sign-out", cookies: [SyncServer.sessionCookie: session], form: ["csrf": String(token)]).status == 303)
        #expect(!center.isDashboard(try await center.send(.GET, "/dashboard", cookies: [SyncServer.sessionCookie: session])))
    }

    @Test(arguments: ServerStoreKind.allCases)
    func onlyStaffSignIn_andFailuresAreThrottled(storeKind: ServerStoreKind) async throws {
        let center = try await Center(storeKind)
        let server = center.server
        defer { Task { await server.stop() } }
        // No password or code is ever set for a patient.
        _ = try await center.server.device(center.dir, "patient", member: "Sam")
        let sam = try await center.server.storage.member(named: "Sam").id
        await #expect(throws: ServerError.self) { try await center.server.storage.setDashboardPassword("x", of: sam, nowMillis: 0) }
        await #expect(throws: ServerError.self) {
            try await center.server.storage.addSignInCode(Secrets.hashCode(Secrets.newCode()), for: sam, nowMillis: 0, expiresMillis: .max)
        }
        // Wrong passwords: refused alike, then throttled; the right one then waits too.
        for _ in 0..<10 { #expect(try await center.signIn(["name": "Rae", "password": "not the password"]).status == 401) }
        #expect(try await center.signIn(["name": "Rae", "password": "not the password"]).status == 429)
        #expect(try await center.signIn(["name": "Rae", "password": Self.password]).status == 429)
        // Someone unknown reads exactly as a wrong password.
        let unknown = try await center.signIn(["name": "Nobody", "password": Self.password])
        #expect(unknown.status == 401 && unknown.body.contains("Sign-in failed"))
    }

    /// The page's choice of population: mentors who share a name are told apart in the
    /// caseload list; a refused choice (a cohort and a caseload, a name no mentor has) says
    /// why and shows the whole center for the weeks asked for, not the default weeks.
    @Test(arguments: ServerStoreKind.allCases)
    func aRefusedChoice_keepsItsWeeks_andSameNamedMentorsAreToldApart(storeKind: ServerStoreKind) async throws {
        let center = try await Center(storeKind)
        let server = center.server
        defer { Task { await server.stop() } }
        for device in ["mia-1", "mia-2"] { _ = try await center.server.device(center.dir, device, role: .mentor, member: "Mia") }
        let session = try #require(try await center.signIn(["name": "Rae", "password": Self.password]).cookies[SyncServer.sessionCookie])
        let page = try await center.send(.GET, "/dashboard", cookies: [SyncServer.sessionCookie: session])
        let options = page.body.matches(of: /<option value="([0-9a-f]{32})">([^<]*)<\/option>/).map { (id: String($0.1), label: String($0.2)) }
        #expect(options.count == 2 && Set(options.map(\.label)).count == 2, "\(options)")
        for option in options { #expect(option.label == "Mia (\(option.id.prefix(8)))") }

        let weeks = "from=2026-06-01&to=2026-08-30"
        for choice in ["cohort=2026-06&caseload=\(options.first?.id ?? "")", "caseload=Nobody"] {
            let refused = try await center.send(.GET, "/dashboard?\(weeks)&\(choice)", cookies: [SyncServer.sessionCookie: session])
            #expect(center.isDashboard(refused))
            let alert = refused.body.firstMatch(of: /role="alert">([^<]*)</)?.1 ?? ""
            #expect(alert.hasSuffix("The whole center is shown for these weeks instead.") && alert.count > 60, "\(choice): \(alert)")
            #expect(refused.body.contains(#"name="from" type="date" value="2026-06-01""#), "\(choice)")
            #expect(refused.body.contains(#"name="to" type="date" value="2026-08-30""#), "\(choice)")
            #expect(refused.body.contains(#"name="cohort" type="month" value="""#) && !refused.body.contains(" selected>"), "\(choice)")
        }
    }
}
