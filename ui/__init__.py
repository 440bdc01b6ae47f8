"""dropscore's Streamlit app: pages that call the scorer package, no scoring logic of their own."""
