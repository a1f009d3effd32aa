"""The lab's Streamlit script: ``streamlit run literate_tx/lab/app.py`` (``literate-tx lab``).

Streamlit runs this file as ``__main__`` on every interaction; the pages live in
:mod:`literate_tx.lab.pages`.
"""

from literate_tx.lab.pages import main

if __name__ == "__main__":
    main()
