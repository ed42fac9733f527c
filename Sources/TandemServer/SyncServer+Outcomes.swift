import Hummingbird
import Logging
import TandemCore
import TandemProtocol

// The center's de-identified statistics (§9.19).
extension SyncServer {
    /// `GET /v1/outcomes?from=YYYY-MM-DD&to=YYYY-MM-DD&cohort=YYYY-MM`: for staff only. Counted
    /// in one snapshot from the patients whose `aggregate` consent is active now.
    func outcomes(_ request: Request, _ log: inout Logger.Metadata) async throws -> Response {
        let principal = try await authenticate(request, &log)
        guard principal.role == .staff else { throw ServerError.forbidden("Only the center's staff read its statistics.") }
        let parameters = request.uri.queryParameters
        func day(_ name: String) throws -> Int? {
            guard let text = parameters[Substring(name)].map(String.init) else { return nil }
            guard let date = try? LocalDate(parsing: text) else { throw ServerError.badRequest("\(name) must be a date like 2026-11-30.") }
            return date.daysSince1970
        }
        let cohort = try parameters["cohort"].map(String.init).map { text -> String in
            guard let month = try? LocalDate(parsing: text + "-01") else { throw ServerError.badRequest("cohort must be a month like 2026-11.") }
            return String(month.description.prefix(7))
        }
        let query = OutcomeQuery(fromDay: try day("from"), toDay: try day("to"), cohort: cohort, minimumCell: limits.outcomeMinimumCell)
        if let from = query.fromDay, let to = query.toDay, from > to { throw ServerError.badRequest("from must not be after to.") }
        let (report, counted) = try await outcomeReport(query)
        log["counted"] = "\(counted)"
        return try json(report)
    }

    /// The report for `query`, counted now from one snapshot of the store (§9.19): what
    /// `GET /v1/outcomes` answers and the dashboard shows; with how many patients it counted.
    func outcomeReport(_ query: OutcomeQuery) async throws -> (report: OutcomeReport, counted: Int) {
        let now = wallClock.nowMillis()
        let population = try await storage.read { store in try OutcomePopulation.read(in: store, nowMillis: Int64(clamping: now)) }
        return (try Outcomes.report(population, query, today: Int(now / 86_400_000)), population.enrolled.count)
    }
}
