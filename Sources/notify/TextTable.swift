/// A plain text table for ops commands: left-aligned first column, right-aligned numbers.
struct TextTable {
    var header: [String]
    var rows: [[String]]

    var rendered: String {
        let all = [self.header] + self.rows
        let widths = self.header.indices.map { column in all.map { $0[safe: column]?.count ?? 0 }.max() ?? 0 }
        return all.map { row in
            row.enumerated().map { column, cell in
                let padding = String(repeating: " ", count: max(0, widths[column] - cell.count))
                return column == 0 || Int(cell) == nil ? cell + padding : padding + cell
            }.joined(separator: "  ")
        }.joined(separator: "\n")
    }
}

extension Array {
    fileprivate subscript(safe index: Int) -> Element? {
        self.indices.contains(index) ? self[index] : nil
    }
}
