/// SVG charts drawn on the server (no script, no external asset): each has a title and a
/// description for screen readers, and the page puts a table of the same figures beside it.
/// A suppressed or empty figure is a gap in the line, never a zero.
enum DashboardCharts {
    struct Series {
        var name: String
        var color: String
        var dashed = false
        var values: [Double?]
    }

    static let width = 640.0, height = 240.0
    static let left = 44.0, right = 12.0, top = 14.0, bottom = 40.0

    /// Escapes text for SVG and HTML.
    static func escape(_ text: String) -> String {
        var out = ""
        for character in text {
            switch character {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.append(character)
            }
        }
        return out
    }

    static func number(_ value: Double) -> String {
        let rounded = (value * 10).rounded() / 10
        return rounded == rounded.rounded() ? String(Int(rounded)) : String(rounded)
    }

    /// A chart of one or more series over `labels` (one point, or one bar, per label), from
    /// 0 to `maximum`; `percent` shows the axis as percentages.
    static func chart(
        id: String, title: String, description: String, labels: [String], series: [Series], maximum: Double, percent: Bool = false,
        bars: Bool = false
    ) -> String {
        let plotWidth = width - left - right, plotHeight = height - top - bottom
        let count = max(1, labels.count)
        let step = plotWidth / Double(count)
        func x(_ index: Int) -> Double { left + step * (Double(index) + 0.5) }
        func y(_ value: Double) -> Double { top + plotHeight * (1 - min(max(value / maximum, 0), 1)) }
        var svg = """
            <svg class="chart" viewBox="0 0 \(Int(width)) \(Int(height))" role="img" aria-labelledby="\(id)-title \(id)-desc" \
            xmlns="http://www.w3.org/2000/svg">
            <title id="\(id)-title">\(escape(title))</title><desc id="\(id)-desc">\(escape(description))</desc>
            """
        // Grid and axis labels.
        for tick in 0...4 {
            let value = maximum * Double(tick) / 4
            let label = percent ? "\(Int((value * 100).rounded()))%" : number(value)
            svg += """
                <line x1="\(left)" x2="\(width - right)" y1="\(y(value))" y2="\(y(value))" stroke="#d0d4da" stroke-width="1"/>\
                <text x="\(left - 6)" y="\(y(value) + 4)" text-anchor="end" font-size="11" fill="#333">\(label)</text>
                """
        }
        let every = max(1, Int((Double(count) / 8).rounded(.up)))
        for (index, label) in labels.enumerated() where index % every == 0 {
            svg += "<text x=\"\(x(index))\" y=\"\(height - bottom + 16)\" text-anchor=\"middle\" font-size=\"11\" fill=\"#333\">\(escape(label))</text>"
        }
        for (number, line) in series.enumerated() {
            if bars {
                let barWidth = step * 0.7 / Double(series.count)
                for (index, value) in line.values.enumerated() {
                    guard let value else { continue }
                    let barX = x(index) - step * 0.35 + barWidth * Double(number)
                    svg += "<rect x=\"\(barX)\" y=\"\(y(value))\" width=\"\(barWidth)\" height=\"\(y(0) - y(value))\" fill=\"\(line.color)\"/>"
                }
                continue
            }
            // A path broken at every missing value.
            var path = "", pen = false
            for (index, value) in line.values.enumerated() {
                guard let value else { pen = false; continue }
                path += "\(pen ? "L" : "M")\(x(index)) \(y(value)) "
                pen = true
            }
            svg += "<path d=\"\(path)\" fill=\"none\" stroke=\"\(line.color)\" stroke-width=\"2.5\"\(line.dashed ? " stroke-dasharray=\"6 4\"" : "")/>"
            for (index, value) in line.values.enumerated() {
                guard let value else { continue }
                svg += "<circle cx=\"\(x(index))\" cy=\"\(y(value))\" r=\"3\" fill=\"\(line.color)\"/>"
            }
        }
        // The legend.
        for (number, line) in series.enumerated() {
            let legendX = left + 150 * Double(number)
            svg += """
                <rect x="\(legendX)" y="\(height - 14)" width="14" height="4" fill="\(line.color)"/>\
                <text x="\(legendX + 20)" y="\(height - 9)" font-size="12" fill="#222">\(escape(line.name))</text>
                """
        }
        return svg + "</svg>"
    }
}
