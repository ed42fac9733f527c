import Foundation
@testable import TandemCLI
import TandemProtocol
import TandemTestSupport
import Testing

/// `tandem report`'s output, as golden files in `Snapshots/` (regenerate with
/// `TANDEM_REGENERATE_FIXTURES=1`): the report a seeded center gives
/// (`Fixtures/outcomes/report.json`, kept by the server's tests) as text with sparklines,
/// as CSV, and as JSON.
@Suite("Report rendering")
struct ReportRenderingTests {
    static var folder: URL { URL(fileURLWithPath: "\(#filePath)").deletingLastPathComponent().appendingPathComponent("Snapshots") }

    static func report() throws -> OutcomeReport {
        try JSONDecoder().decode(OutcomeReport.self, from: Data(contentsOf: FixtureFiles.directory("outcomes").appendingPathComponent("report.json")))
    }

    func check(_ name: String, _ text: String) throws {
        let url = Self.folder.appendingPathComponent(name)
        if FixtureFiles.regenerate { try FixtureFiles.write(text, to: url) }
        #expect(try FixtureFiles.text(url) == text, "\(name) differs from its golden file")
    }

    @Test func text_csv_andJSON_matchTheirGoldenFiles() throws {
        let report = try Self.report()
        try check("report-text.txt", OutcomeRendering.text(report, style: Style(enabled: false), sparklines: true) + "\n")
        try check("report.csv", OutcomeRendering.csv(report))
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        try check("report.json", prettyJSON(try encoder.encode(report)) + "\n")
    }

    @Test func everySuppressedFigure_isMarked_andShowsNoNumber() throws {
        let report = try Self.report()
        let csv = OutcomeRendering.csv(report).split(separator: "\n").dropFirst()
            .map { $0.split(separator: ",", omittingEmptySubsequences: false) }
        let suppressed = csv.filter { $0[8] == "true" }
        #expect(!suppressed.isEmpty)
        // table, week, measure, then nothing but the mark (and the population).
        for fields in suppressed {
            #expect(fields.count == 11 && fields[3..<8].allSatisfy { $0.isEmpty }, "\(fields)")
        }
        let text = OutcomeRendering.text(report, style: Style(enabled: false), sparklines: false)
        #expect(text.contains("*"))
    }

    /// Every CSV line names its population, so lines of several reports pasted together
    /// stay apart; a mentor's name is one quoted field, and one a spreadsheet would take
    /// for a formula is opened as text.
    @Test func everyCSVLine_namesItsCohortOrCaseload() throws {
        var report = try Self.report()
        report.cohort = "2026-09"
        let cohort = OutcomeRendering.csv(report).split(separator: "\n")
        #expect(cohort.first?.hasSuffix(",suppressed,cohort,caseload") == true)
        #expect(cohort.dropFirst().allSatisfy { $0.hasSuffix(",2026-09,") }, "\(cohort)")

        report.cohort = nil
        report.caseload = "=Mia, \"the night shift\""
        let caseload = OutcomeRendering.csv(report).split(separator: "\n").dropFirst()
        #expect(!caseload.isEmpty)
        #expect(caseload.allSatisfy { $0.hasSuffix(",,\"'=Mia, \"\"the night shift\"\"\"") }, "\(caseload.first ?? "")")
    }
}
