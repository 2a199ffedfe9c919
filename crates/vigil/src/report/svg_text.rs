//! Reading the pictures back in tests: the texts of an SVG document's
//! `<text>` elements (shared by the unit and the integration tests).

/// The texts of `svg`'s `<text>` elements, trimmed, in document order.
pub fn texts(svg: &str) -> Vec<String> {
    svg.split("<text")
        .skip(1)
        .filter_map(|t| t.split_once('>'))
        .filter_map(|(_, rest)| rest.split_once("</text>"))
        .map(|(inner, _)| inner.trim().to_string())
        .collect()
}
