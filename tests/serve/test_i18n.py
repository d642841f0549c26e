"""The page in English and 简体中文 (issue #30, item 9), in Debian's chromium against ``juanji serve`` of a LeNet-5
and a ResNet-20: one table of words (static/i18n.js) with every key in both languages and every key the page uses in
it, the tutorials' terms (docs/glossary.zh.md), Chinese at ?lang=zh or for a browser that prefers it, a switch
between the two, and at ?lang=zh no English word on the page but the names the runs give."""
import json
import re
import urllib.request
from pathlib import Path

import pytest
from test_accessibility import LAPTOP, axe_check, everything, opened, pytestmark, shown  # noqa: F401
from test_accessibility import axe, url  # noqa: F401  (module fixtures)

ROOT = Path(__file__).resolve().parents[2]
STATIC = ROOT / "juanji" / "serve" / "static"
GLOSSARY = ROOT / "docs" / "glossary.zh.md"
PLACEHOLDER = re.compile(r"\{(\w+)\}")
# A concept as the glossary writes it in English → (the Chinese word the tutorials use for it, its English words on
# the page as a regular expression).
TERMS = {"kernel": ("卷积核", r"kernels?"), "feature map": ("特征图", r"feature maps?"),
         "padding": ("填充", r"pad(ding)?"), "stride": ("步幅", r"strides?"), "pooling": ("池化", r"pooling"),
         "saliency map": ("显著图", r"saliency"), "epoch": ("轮", r"epochs?"), "learning rate": ("学习率", r"learning rate"),
         "receptive field": ("感受野", r"receptive fields?"), "channel": ("通道", r"channels?"),
         "shortcut": ("捷径", r"shortcut"), "convolution": ("卷积", r"convolutions?"), "image": ("图像", r"images?"),
         "pixel": ("像素", r"pixels?")}
# Other names of those concepts, which the glossary lists and the Chinese pages do not use: word → its concept.
OTHER_NAMES = {"滤波器": "kernel", "过滤器": "kernel", "特征映射": "feature map", "激活图": "feature map",
               "补零": "padding", "步长": "stride", "汇聚": "pooling", "下采样": "pooling", "子采样": "pooling",
               "敏感度图": "saliency map", "梯度图": "saliency map", "周期": "epoch", "回合": "epoch",
               "视野": "receptive field", "跳跃连接": "shortcut", "短路连接": "shortcut",
               "批量归一化": "batch normalisation"}
# Words that stay as they are in the Chinese UI, as in the Chinese tutorials: names of methods, layers, files,
# commands and keys, the max of a formula, softmax and its logits (the glossary's and classifier.zh.md's words) and
# NaN (a formula's subscripts and names with digits are taken out first).
KEPT = {"juanji", "Grad", "CAM", "ReLU", "Sequential", "best", "npz", "metrics", "jsonl", "train", "max", "Shift",
        "Enter", "softmax", "logits", "NaN"}


@pytest.fixture(scope="module")
def words(browser, url):  # noqa: F811
    """The table of static/i18n.js, as the page's module exports it: {language: {key: text}}."""
    page = browser.new_page()
    page.goto(url + "/api/runs")                       # any page of the server: the module loads from its origin
    table = page.evaluate("async () => (await import('/static/i18n.js')).WORDS")
    page.close()
    return table


def used_keys() -> set[str]:
    """Every key the page's modules ask t() for, and every key index.html names in a data-i18n attribute."""
    keys = set()
    for path in STATIC.glob("*.js"):
        keys |= set(re.findall(r'\bt\(\s*"([\w.]+)"', path.read_text(encoding="utf-8")))
    html = (STATIC / "index.html").read_text(encoding="utf-8")
    return keys | set(re.findall(r'\bdata-i18n(?:-[\w-]+)?="([\w.]+)"', html))


def glossary() -> list[tuple[str, str, str]]:
    """The glossary's rows: (our words, the English words, the other names)."""
    return re.findall(r"^\| ([^|]+?) \| ([^|]+?) \| ([^|]+?) \|", GLOSSARY.read_text(encoding="utf-8"), re.M)[1:]


def test_every_key_is_in_both_languages_with_the_same_blanks_and_every_key_used_is_there(words):
    english, chinese = words["en"], words["zh"]
    assert set(english) == set(chinese), set(english) ^ set(chinese)
    for key, text in english.items():
        assert set(PLACEHOLDER.findall(text)) == set(PLACEHOLDER.findall(chinese[key])), key
    used = used_keys()
    assert used - set(english) == set(), "keys the page uses that the table lacks"
    assert set(english) - used == set(), "keys of the table that nothing uses"
    untranslated = [key for key, text in chinese.items() if not re.search(r"[\u4e00-\u9fff]", text)
                    and set(re.findall(r"[A-Za-z]{2,}", PLACEHOLDER.sub("", text))) - KEPT]
    assert untranslated == []


def test_the_chinese_words_are_the_tutorials(words):
    rows = glossary()
    for concept, (word, english) in TERMS.items():
        assert any(word in ours and concept in theirs for ours, theirs, _ in rows), (
            f"docs/glossary.zh.md has no row giving {word} for {concept}")
        for key, text in words["en"].items():
            if re.search(rf"\b{english}\b", PLACEHOLDER.sub("", text), re.I):
                assert word in words["zh"][key], f"{key}: {words['zh'][key]!r} does not say {word} for {concept}"
    for word, concept in OTHER_NAMES.items():
        assert any(concept in theirs and word in others for _, theirs, others in rows), (word, concept)
        assert [key for key, text in words["zh"].items() if word in text] == [], f"{word}: not the tutorials' word"


def test_the_tutorial_quotes_the_panels_by_the_names_the_page_shows(words):
    quoted = {language: re.findall(r"\*([^*\n]+)\*", (ROOT / "docs" / page).read_text(encoding="utf-8"))
              for language, page in (("en", "serve.md"), ("zh", "serve.zh.md"))}
    named = [key for key, text in words["en"].items() if text.lower() in {q.lower() for q in quoted["en"]}]
    assert len(named) >= 5, named                      # compare with, the panels, the test-set button …
    assert [words["zh"][key] for key in named if words["zh"][key] not in quoted["zh"]] == []


TEXTS = """() => {
  const skip = (e) => e.closest('[hidden], script, style, [lang="en"]');
  const texts = [document.title];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    if (node.textContent.trim() && !skip(node.parentElement)) texts.push(node.textContent);
  }
  for (const e of document.querySelectorAll('[title], [aria-label], [alt], [placeholder]')) {
    if (skip(e)) continue;
    for (const name of ['title', 'aria-label', 'alt', 'placeholder']) {
      if (e.getAttribute(name)) texts.push(e.getAttribute(name));
    }
  }
  return texts;
}"""


def english_words(page, names):
    """The English words on the page (texts, tooltips, labels, alternative texts), the runs' names taken out."""
    found = set()
    for text in page.evaluate(TEXTS):
        for name in names:
            text = re.sub(rf"(?<![\w.]){re.escape(name)}(?!\w)", " ", text)
        text = re.sub(r"_\w+|\b\w*\d\w*\b", " ", text)     # a formula's subscripts; names with digits (conv1)
        found |= {word for word in re.findall(r"[A-Za-z]{2,}", text) if word not in KEPT}
    return found


def test_at_lang_zh_the_page_is_chinese_but_for_the_names_the_runs_give(browser, url, axe):  # noqa: F811
    with urllib.request.urlopen(url + "/api/runs", timeout=60) as answer:
        listed = json.load(answer)["runs"]
    names = sorted({n for run in listed for n in [run["name"], run["model"], *run["classes"], *(
        layer[key] for layer in run["layers"] for key in ("name", "type")), *(k["name"] for k in run["kernels"])]},
                   key=len, reverse=True)
    page = opened(browser, url, LAPTOP, "/?lang=zh")
    assert page.evaluate("document.documentElement.lang") == "zh"
    everything(page)                                   # a convolution's arithmetic, kernels, the confusion matrix
    left = english_words(page, names)
    page.hover("#detail-map", position={"x": 3, "y": 3})                  # the padding of the corner
    page.click('.maps canvas[data-layer="2"][data-map="1"]')              # a pooling's window
    page.wait_for_function("document.querySelector('#mac').textContent.includes('y[1, 0, 0]')")
    left |= english_words(page, names)
    page.locator("#confusion td").nth(1).click()                          # one cell's mistakes
    page.wait_for_selector("#misclassified figure")
    page.select_option("#compare-run", "resnet20")                        # two runs side by side
    page.wait_for_selector("#compare tr:nth-child(4)")
    left |= english_words(page, names)
    assert page.locator("#topk li").first.inner_text().startswith(page.get_attribute("#topk", "data-top"))
    assert page.get_attribute("#topk", "data-top") in listed[0]["classes"]         # the run's own class names

    shown(page, lambda: page.select_option("#run", "resnet20"), "resnet20")
    for layer, k, says in (("bn1", 2, "σ²"), ("layer2.0", 20, "S(x)[20] = 0"), ("layer2.0", 3, "S(x)[3, 0, 0]"),
                           ("layer1.1", 5, "S(x)[5, 0, 0]")):             # batch norm, the three shortcuts
        page.click(f'.maps canvas[data-layer="{layer}"][data-map="{k}"]')
        page.wait_for_function("s => document.querySelector('#mac').textContent.includes(s)", arg=says)
        left |= english_words(page, names)
    page.locator('.maps canvas[data-layer="avgpool"]').click(position={"x": 30, "y": 8})   # a global pooling
    page.wait_for_function("document.querySelector('#detail-title').textContent.includes('avgpool')")
    left |= english_words(page, names)
    assert left == set(), f"English words on the Chinese page: {sorted(left)}"
    found = axe_check(page, axe)
    assert found == [], "\n".join(found)
    assert page.errors == []
    page.context.close()


def test_the_browser_language_chooses_and_the_switch_changes_it(browser, url, words):
    def heading(page):
        return page.inner_text("#try h2")
    page = opened(browser, url, LAPTOP, locale="zh-CN")                  # navigator.languages: zh-CN first
    assert heading(page) == words["zh"]["try.title"] and page.evaluate("document.documentElement.lang") == "zh"
    assert page.get_attribute("#languages [aria-current]", "lang") == "zh"
    shown(page, lambda: page.click('#languages a[lang="en"]'))           # the switch: English, asked in the URL
    assert heading(page) == words["en"]["try.title"] and "lang=en" in page.url
    page.context.close()
    page = opened(browser, url, LAPTOP, "/?lang=zh", locale="en-US")      # the URL wins over the browser
    assert heading(page) == words["zh"]["try.title"]
    page.context.close()
    page = opened(browser, url, LAPTOP, "/?lang=xx", locale="de-DE")   # neither: English
    assert heading(page) == words["en"]["try.title"] and page.evaluate("document.documentElement.lang") == "en"
    page.context.close()
