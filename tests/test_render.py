"""markdown_to_text: the plain text that is indexed and cut into snippets."""

from __future__ import annotations

from search_service.ingest.render import cjk_text, markdown_to_text

PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="


def test_words_are_kept_and_inline_syntax_dropped():
    text = markdown_to_text("Some **bold**, _emphasis_, ***both*** and `code` words.")
    assert text == "Some bold, emphasis, both and code words."


def test_block_syntax_is_dropped_and_blocks_stay_apart():
    markdown = "Intro paragraph.\n\n- item one\n- item two\n\n1. first\n\n> quoted words\n\n```python\nprint('hi')\n```"
    text = markdown_to_text(markdown)
    for word in ("Intro paragraph.", "item one", "item two", "first", "quoted words", "print('hi')"):
        assert word in text
    for syntax in ("- item", "1.", ">", "```"):
        assert syntax not in text
    assert text.split("\n\n")[:2] == ["Intro paragraph.", "item one"]


def test_link_text_is_kept_but_link_targets_dropped():
    text = markdown_to_text(
        "See [the report](https://example.com/target?q=1 'Title') and [ref][1].\n\n[1]: https://ref.example/x"
    )
    assert text == "See the report and ref."


def test_image_data_url_is_dropped():
    text = markdown_to_text(f"Before ![chart](data:image/png;base64,{PNG}) after")
    assert "data:" not in text
    assert "base64" not in text
    assert PNG[:20] not in text
    assert text.startswith("Before") and text.endswith("after")


def test_real_html_tags_are_dropped_and_their_text_kept():
    text = markdown_to_text(
        "Hello <b>bold</b> <script>alert(1)</script> <img src=x onerror=alert(1)> "
        "<a href='javascript:alert(2)'>click</a> end"
    )
    assert text.split() == ["Hello", "bold", "alert(1)", "click", "end"]
    for tag in ("<b>", "</b>", "<script>", "</script>", "<img", "onerror", "javascript:"):
        assert tag not in text


def test_html_block_tags_and_comments_are_dropped():
    text = markdown_to_text("<div class='x'>\nblock <i>words</i>\n</div>\n\nText <!-- hidden note --> after")
    assert text.split() == ["block", "words", "Text", "after"]


def test_reuters_markers_in_angle_brackets_stay_as_text():
    markdown = "STANDARD OIL <SRD> TO FORM UNIT\n\n<Kuwait Petroleum Corp> said <KUMT.TOK> and <Standard Oil Co> rose"
    text = markdown_to_text(markdown)
    assert (
        text == "STANDARD OIL <SRD> TO FORM UNIT\n\n<Kuwait Petroleum Corp> said <KUMT.TOK> and <Standard Oil Co> rose"
    )


def test_reuters_marker_next_to_real_tag_keeps_only_the_marker():
    assert markdown_to_text("<Standard Oil Co> and <b>bold</b>").split() == ["<Standard", "Oil", "Co>", "and", "bold"]


def test_comparison_signs_are_kept():
    assert markdown_to_text("x < y and y > z, 3<4") == "x < y and y > z, 3<4"


def test_leading_heading_equal_to_the_title_is_dropped():
    title = "STANDARD OIL <SRD> TO FORM FINANCIAL UNIT"
    text = markdown_to_text(f"# {title}\n\nStandard Oil Co said it will form a unit.", title)
    assert text == "Standard Oil Co said it will form a unit."


def test_leading_heading_that_differs_from_the_title_is_kept():
    text = markdown_to_text("# Another heading\n\nBody words.", "The title")
    assert text == "Another heading\n\nBody words."


def test_title_heading_later_in_the_body_and_subheadings_are_kept():
    markdown = "Intro words.\n\n# The title\n\n### What happened\n\nBody words."
    text = markdown_to_text(markdown, "The title")
    assert text == "Intro words.\n\nThe title\n\nWhat happened\n\nBody words."


def test_title_only_brief_renders_to_empty_text():
    assert markdown_to_text("# BAHIA COCOA REVIEW", "BAHIA COCOA REVIEW") == ""
    assert markdown_to_text("", "BAHIA COCOA REVIEW") == ""


def test_without_a_title_the_heading_is_kept():
    assert markdown_to_text("# BAHIA COCOA REVIEW\n\nBody.") == "BAHIA COCOA REVIEW\n\nBody."


def test_table_cells_and_image_alt_texts_are_kept_as_words():
    markdown = '| a | b |\n|---|---|\n| 1 | 2 |\n\nAfter ![chart of rates](x.png) and <img src=y alt="logo"> end'
    assert markdown_to_text(markdown) == "a b \n\n1 2 \n\nAfter  chart of rates  and  logo  end"


def test_tags_are_told_from_markers_by_the_whole_element_name():
    # Names sharing first letters (a/abbr/address, b/bdo/br, h1/hr) and near misses that are no element.
    markdown = "x <abbr>A</abbr> <bdo>B</bdo> <abc> <bx> <i>C</i> <h7> <hr> <address class=a>D</address>"
    assert markdown_to_text(markdown) == "x A B <abc> <bx> C <h7> \n\n D"


def test_title_heading_is_compared_as_text_after_markup_and_entities():
    assert markdown_to_text("# AT&T <T> SAYS\n\nBody.", "AT&T <T> SAYS") == "Body."
    assert markdown_to_text("# AT&amp;T\n\nBody.", "AT&amp;T") == "AT&T\n\nBody."
    assert markdown_to_text("# Some   title\n\nBody.", "Some title") == "Body."


def test_cjk_runs_are_collected_and_plain_ascii_gives_none():
    assert cjk_text("東京 x", "plain", "ソウル 서울") == "東京\nソウル\n서울"
    assert cjk_text("plain", "words", "only") == ""
    assert cjk_text("café", "naïve") == ""
