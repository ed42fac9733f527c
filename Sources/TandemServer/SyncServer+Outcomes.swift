import Hummingbird
import Logging
import TandemCore
import TandemProtocol

// The center's de-identified statistics (§9.19).
extension SyncServer {
    /// `GET /v1/outcomes?from=YYYY-MM-DD&to=YYYY-MM-DD&cohort=YYYY-MM&caseload=MENTOR`: for
    /// staff only. Counted in one snapshot from the patients whose `aggregate` consent is
    /// active now.
    func outcomes(_ request: Request, _ log: inout Logger.Metadata) async throws -> Response {
        let principal = try await authenticate(request, &log)
        guard principal.role == .staff else { throw ServerError.forbidden("Only the center's staff read its statistics.") }
        let parameters = request.uri.queryParameters
        let query = try outcomeQuery { parameters[Substring($0)].map(String.init) }
        let counted = try await outcomeReport(query)
        log["counted"] = "\(counted.patients)"
        return try json(counted.report)
    }

    /// The query a request's filters ask for, read the same way for `GET /v1/outcomes` and
    /// the dashboard: `from` and `to` (dates), `cohort` (a month) and `caseload` (a mentor's
    /// name or member id); an empty one is absent.
    /// - Throws: `ServerError.badRequest` that names the filter at fault.
    func outcomeQuery(_ parameter: (String) -> String?) throws -> OutcomeQuery {
        func text(_ name: String) -> String? { parameter(name).flatMap { $0.isEmpty ? nil : $0 } }
        func day(_ name: String) throws -> Int? {
            guard let text = text(name) else { return nil }
            guard let date = try? LocalDate(parsing: text) else { throw ServerError.badRequest("\(name) must be a date like 2026-11-30.") }
            return date.daysSince1970
        }
        let cohort = try text("cohort").map { text -> String in
            guard let month = try? LocalDate(parsing: text + "-01") else { throw ServerError.badRequest("cohort must be a month like 2026-11.") }
            return String(month.description.prefix(7))
        }
        let caseload = text("caseload")
        if let caseload, caseload.utf8.count > 200 { throw ServerError.badRequest("caseload must be a mentor's name or member id.") }
        let query = OutcomeQuery(fromDay: try day("from"), toDay: try day("to"), cohort: cohort, caseload: caseload, minimumCell: limits.outcomeMinimumCell)
        if let from = query.fromDay, let to = query.toDay, from > to { throw ServerError.badRequest("from must not be after to.") }
        return query
    }

    /// The report for `query`, counted now from one snapshot of the store (§9.19): what
    /// `GET /v1/outcomes` answers and the dashboard shows; with how many patients it counted
    /// and the center's mentors (whose caseloads may be asked for), by name.
    /// - Throws: `ServerError.badRequest` for a query `Outcomes.report` refuses.
    func outcomeReport(_ query: OutcomeQuery) async throws -> (report: OutcomeReport, patients: Int, mentors: [(id: MemberID, name: String)]) {
        let now = wallClock.nowMillis()
        let population = try await storage.read { store in try OutcomePopulation.read(in: store, nowMillis: Int64(clamping: now)) }
        let mentors = population.mentors.map { (id: $0.key, name: $0.value) }.sorted { ($0.name, $0.id) < ($1.name, $1.id) }
        return (try Outcomes.report(population, query, today: Int(now / 86_400_000)), population.enrolled.count, mentors)
    }
}
