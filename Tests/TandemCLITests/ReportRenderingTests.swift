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
        let suppressed = csv.filter { $0.hasSuffix(",true") }
        #expect(!suppressed.isEmpty)
        // table, week, measure, then nothing but the mark.
        for line in suppressed {
            let numbers = line.split(separator: ",", omittingEmptySubsequences: false).dropFirst(3).dropLast()
            #expect(numbers.allSatisfy { $0.isEmpty }, "\(line)")
        }
        let text = OutcomeRendering.text(report, style: Style(enabled: false), sparklines: false)
        #expect(text.contains("*"))
    }
}
