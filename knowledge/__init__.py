"""Knowledge base: articles and FAQ entries searched when no flow fits (BM25 over jieba
tokens). Arrives with its own issue; the pipeline will reach it through a `Retriever` port."""
