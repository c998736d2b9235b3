import AtrousIO


/// A minimal CSV reader: commas separate fields, double quotes group them
/// ("" inside quotes is a quote).
public func csvRows(_ text: String) -> [[String]] {
  var rows: [[String]] = [], row: [String] = [], field = "", quoted = false
  var characters = Array(text).makeIterator()
  while let ch = characters.next() {
    if quoted {
      if ch == "\"" {
        if let next = characters.next() {
          if next == "\"" { field.append("\"") } else {
            quoted = false
            if next == "," { row.append(field); field = "" } else if next == "\n" { row.append(field); rows.append(row); row = []; field = "" } else { field.append(next) }
          }
        } else { quoted = false }
      } else { field.append(ch) }
    } else if ch == "\"" { quoted = true } else if ch == "," { row.append(field); field = "" } else if ch == "\n" {
      row.append(field); rows.append(row); row = []; field = ""
    } else { field.append(ch) }
  }
  if !field.isEmpty || !row.isEmpty { row.append(field); rows.append(row) }
  return rows
}
