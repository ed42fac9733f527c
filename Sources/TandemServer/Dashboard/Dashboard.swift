import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import Mustache
import TandemCore
import TandemProtocol

/// The staff dashboard (PROTOCOL.md §9.20): the center's de-identified outcomes as HTML with
/// server-drawn charts, for staff signed in as themselves. No script and no external
/// asset; every page is readable without JavaScript and on a phone-sized screen.
///
/// - A sign-in is a staff member's name and the password set on the host (bcrypt), or a
///   one-time code printed there. Failures are throttled per name and per client address,
///   like tokens (§9.13), and every failure reads the same.
/// - The session is a random token in an `HttpOnly`, `SameSite=Strict` cookie (`Secure`
///   when the trusted proxy says the request came over HTTPS), whose hash the store keeps;
///   it ends after 30 idle minutes, at sign-out, or when its member stops being staff.
/// - Every form that changes something carries a CSRF token: the sign-in form one bound to
///   a cookie (double submit), the sign-out form the session's own.
extension SyncServer {
    public static let sessionCookie = "tandem_session"
    public static let signInCookie = "tandem_sign_in"
    static let dashboardIdleMillis: UInt64 = 30 * 60_000
    static let maxFormBytes = 4_096

    func dashboardRoutes(_ router: Router<TandemRequestContext>) {
        router.get("dashboard") { request, context in await dashboardAnswer("/dashboard", request, context) { try await dashboard(request) } }
        router.get("dashboard/style.css") { _, _ in
            var headers = Self.pageHeaders
            headers[.contentType] = "text/css; charset=utf-8"
            headers[.cacheControl] = "max-age=3600"
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: DashboardTemplates.style)))
        }
        router.post("dashboard/sign-in") { request, context in
            await dashboardAnswer("/dashboard/sign-in", request, context) { try await signIn(request) }
        }
        router.post("dashboard/sign-out") { request, context in
            await dashboardAnswer("/dashboard/sign-out", request, context) { try await signOut(request) }
        }
    }

    /// Headers of every dashboard answer: nothing cached, nothing framed, no script, nothing
    /// loaded from anywhere else.
    static var pageHeaders: HTTPFields {
        var headers = HTTPFields()
        headers[.contentType] = "text/html; charset=utf-8"
        headers[.cacheControl] = "no-store"
        headers[HTTPField.Name("Content-Security-Policy")!] =
            "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
        headers[HTTPField.Name("X-Content-Type-Options")!] = "nosniff"
        headers[HTTPField.Name("Referrer-Policy")!] = "no-referrer"
        headers[HTTPField.Name("X-Frame-Options")!] = "DENY"
        return headers
    }

    /// Runs a dashboard handler, counted and logged like every route; an error becomes a
    /// plain page that says what to do, never a detail of the failure.
    func dashboardAnswer(
        _ route: String, _ request: Request, _ context: TandemRequestContext, _ body: () async throws -> Response
    ) async -> Response {
        let started = ContinuousClock.now
        let address = context.clientAddress(of: request, trustedProxy: limits.trustedProxy)
        let proxied = address != nil
        let peer = context.peerAddress(of: request, trustedProxy: limits.trustedProxy)
        var log: Logger.Metadata = ["route": "\(route)"]
        let response: Response = await Self.$clientAddress.withValue(address) {
            await Self.$peerAddress.withValue(peer) {
            await Self.$viaTrustedProxy.withValue(proxied) {
                do {
                    return try await body()
                } catch let error as ServerError {
                    log["error"] = "\(error.code)"
                    var answer = page("sign-in", SignInView(title: "Sign in", csrf: "", message: error.description), status: HTTPResponse.Status(code: error.status))
                    if case .throttled(let seconds) = error { answer.headers[.retryAfter] = String(seconds) }
                    return answer
                } catch {
                    log["error"] = "internal"
                    log["errorType"] = "\(String(reflecting: type(of: error)))"
                    return page("sign-in", SignInView(title: "Sign in", csrf: "", message: "Something went wrong; try again."), status: .internalServerError)
                }
            }
            }
        }
        record(route, status: Int(response.status.code), since: started, log)
        return response
    }

    /// Whether the request came through the trusted proxy (which alone may say it came over HTTPS).
    @TaskLocal static var viaTrustedProxy = false

    func page(_ template: String, _ view: Any, status: HTTPResponse.Status = .ok, cookies: [Cookie] = []) -> Response {
        let html = DashboardTemplates.library.render(view, withTemplate: template) ?? "Page \(template) is missing."
        var response = Response(status: status, headers: Self.pageHeaders, body: .init(byteBuffer: ByteBuffer(string: html)))
        for cookie in cookies { response.setCookie(cookie) }
        return response
    }

    func redirect(_ location: String, cookies: [Cookie] = []) -> Response {
        var headers = Self.pageHeaders
        headers[.location] = location
        var response = Response(status: .seeOther, headers: headers)
        for cookie in cookies { response.setCookie(cookie) }
        return response
    }

    /// Whether the request reached the server over HTTPS: said only by the trusted proxy.
    func overHTTPS(_ request: Request) -> Bool {
        guard Self.viaTrustedProxy else { return false }
        return request.headers[HTTPField.Name("X-Forwarded-Proto")!]?.lowercased() == "https"
    }

    func cookie(_ name: String, _ value: String, _ request: Request, maxAge: Int? = nil) -> Cookie {
        Cookie(name: name, value: value, maxAge: maxAge, path: "/dashboard", secure: overHTTPS(request), httpOnly: true, sameSite: .strict)
    }

    // MARK: Pages

    struct SignInView {
        var title: String
        var csrf: String
        var message: String?
    }

    /// The sign-in page, with a new CSRF token bound to a cookie of its own.
    func signInPage(_ request: Request, message: String? = nil, status: HTTPResponse.Status = .ok) -> Response {
        let csrf = Secrets.newToken()
        return page(
            "sign-in", SignInView(title: "Sign in", csrf: csrf, message: message), status: status,
            cookies: [cookie(Self.signInCookie, csrf, request, maxAge: 3_600)])
    }

    /// The signed-in staff member, if the request's session cookie names a live session.
    func dashboardSession(_ request: Request) async throws -> (DashboardSession, [UInt8])? {
        // The store keeps the session alive for 30 idle minutes, counted from its last-seen
        // time, which moves at most once a minute (`DashboardSession.touchMillis`).
        guard let token = request.cookies[Self.sessionCookie]?.value, token.utf8.count == 64 else { return nil }
        let hash = Secrets.hash(token)
        guard let session = try await storage.dashboardSession(hash, nowMillis: wallClock.nowMillis(), idleMillis: Self.dashboardIdleMillis) else { return nil }
        return (session, hash)
    }

    func dashboard(_ request: Request) async throws -> Response {
        guard let (session, _) = try await dashboardSession(request) else { return signInPage(request) }
        let parameters = request.uri.queryParameters
        var message: String?
        var query: OutcomeQuery
        do {
            query = try outcomeQuery { parameters[Substring($0)].map(String.init) }
        } catch let error as ServerError {
            message = "\(error.description) The default is shown instead."
            query = OutcomeQuery(minimumCell: limits.outcomeMinimumCell)
        }
        // A refused choice of population (a cohort and a caseload, a name no mentor has)
        // keeps the weeks asked for: the whole center is shown for them, and the message
        // says why. A range refused as well falls back to the default.
        let counted: (report: OutcomeReport, patients: Int, mentors: [(id: MemberID, name: String)])
        do {
            counted = try await outcomeReport(query)
        } catch let error as ServerError {
            var center = query
            center.cohort = nil
            center.caseload = nil
            if query != center, let same = try? await outcomeReport(center) {
                message = "\(error.description) The whole center is shown for these weeks instead."
                counted = same
            } else {
                message = "\(error.description) The default is shown instead."
                counted = try await outcomeReport(OutcomeQuery(minimumCell: limits.outcomeMinimumCell))
            }
        }
        return page("page", DashboardView(
            counted.report, mentors: counted.mentors, asked: query.caseload, staff: session.name, csrf: session.csrf, message: message))
    }

    // MARK: Sign-in and sign-out

    struct SignInForm: Decodable {
        var csrf: String?
        var name: String?
        var password: String?
        var code: String?
    }

    func form<Form: Decodable>(_ request: Request, as type: Form.Type) async throws -> Form {
        let body = try await request.body.collect(upTo: Self.maxFormBytes)
        do {
            return try URLEncodedFormDecoder().decode(type, from: String(buffer: body))
        } catch {
            throw ServerError.badRequest("The form could not be read; reload the page and try again.")
        }
    }

    func signIn(_ request: Request) async throws -> Response {
        let form = try await form(request, as: SignInForm.self)
        // The form must carry the token its page set in a cookie: another site cannot.
        guard let expected = request.cookies[Self.signInCookie]?.value, let given = form.csrf,
              Self.sameSecret(expected, given) else {
            return signInPage(request, message: "The sign-in form expired; please try again.", status: .forbidden)
        }
        let name = (form.name ?? "").trimmingCharacters(in: .whitespaces)
        let code = (form.code ?? "").trimmingCharacters(in: .whitespaces)
        let password = form.password ?? ""
        guard (!name.isEmpty && !password.isEmpty) || !code.isEmpty else {
            return signInPage(request, message: "Give your name and password, or a one-time code.", status: .badRequest)
        }
        let now = wallClock.nowMillis()
        // Failures count per name (or per code) and per client address (the peer, or the
        // trusted proxy's last hop), both looked at before any password is checked: a
        // client that keeps failing spends no more bcrypt time. A code is its own key, so
        // wrong codes lock out no one else's.
        let key = Secrets.hash("dashboard:" + (code.isEmpty ? "name:" + name.lowercased() : "code:" + Secrets.normalizeCode(code)))
        let address = "dashboard:" + (Self.peerAddress ?? "unknown")
        if let wait = await authThrottle.retryAfter(token: key, now: now) { throw ServerError.throttled(retryAfter: wait) }
        if let wait = await authThrottle.retryAfter(address: address, now: now) { throw ServerError.throttled(retryAfter: wait) }
        var member: MemberID?
        if !code.isEmpty {
            member = try await storage.useSignInCode(Secrets.hashCode(code), nowMillis: now)
        } else if password.utf8.count <= StaffPassword.lengths.upperBound {
            let candidates = try await storage.dashboardPasswords(named: name)
            for candidate in candidates where try await StaffPassword.verify(password, hash: candidate.hash) {
                member = candidate.member
                break
            }
            // An unknown name costs what a wrong password costs: timing tells no names.
            if candidates.isEmpty { try await StaffPassword.verifyNothing(password) }
        }
        guard let member else {
            await authThrottle.failed(token: key, address: address, now: now)
            return signInPage(request, message: "Sign-in failed: the name and password, or the code, are not right.", status: .unauthorized)
        }
        let token = Secrets.newToken()
        try await storage.openDashboardSession(Secrets.hash(token), member: member, csrf: Secrets.newToken(), nowMillis: now)
        return redirect("/dashboard", cookies: [cookie(Self.sessionCookie, token, request), cookie(Self.signInCookie, "", request, maxAge: 0)])
    }

    struct SignOutForm: Decodable {
        var csrf: String?
    }

    func signOut(_ request: Request) async throws -> Response {
        let form = try await form(request, as: SignOutForm.self)
        guard let (session, hash) = try await dashboardSession(request) else { return redirect("/dashboard") }
        guard let given = form.csrf, Self.sameSecret(session.csrf, given) else {
            throw ServerError.forbidden("The sign-out form did not come from this dashboard; sign out from the dashboard's own page.")
        }
        try await storage.closeDashboardSession(hash)
        return redirect("/dashboard", cookies: [cookie(Self.sessionCookie, "", request, maxAge: 0)])
    }

    /// Compares two secrets in time that does not depend on where they differ.
    static func sameSecret(_ a: String, _ b: String) -> Bool {
        let (x, y) = (Array(a.utf8), Array(b.utf8))
        guard x.count == y.count, !x.isEmpty else { return false }
        return zip(x, y).reduce(0) { $0 | ($1.0 ^ $1.1) } == 0
    }
}
